#!/usr/bin/env bash
# Proves the CUDA backend on a GPU machine in one go: what is there, configure, build, the
# GPU tests, optionally the CPU tests and a compute-sanitizer pass, and the GPU benchmarks
# next to PyTorch (bench/compare_gpu.sh), with a summary table last. Run from the repository
# root on the GPU machine, with deps/ carried (made here by tools/gather_gpu_deps.sh):
#
#   tools/gpu_check.sh [--prebuilt] [--cpu-too] [--memcheck] [--profile] [--no-bench] [--werror]
#
# Through the device tool (here: tools/gather_gpu_deps.sh first): command
# "bash tools/gpu_check.sh", carry ["deps"], timeout_s 540 (OUT is set there; see below).
# With --prebuilt (here: tools/pack_gpu_prebuilt.sh too), carry ["deps", "gpu-pre"]: no
# configure and no build, the binaries built here run there (minutes of the lease saved).
#
#   --prebuilt  run gpu-pre/bin/{pacer,test_gpu} instead of building; each GPU test case then
#               runs in a process of its own (a crash loses one case, not the suite)
#   --cpu-too   also run the CPU suite (ctest -LE gpu)
#   --memcheck  compute-sanitizer --tool memcheck over the GPU test binaries
#   --profile   the ResNet-50 batch-256 16-mixed NHWC step's replay time per node kind
#               (pacer graph --profile), the graph step with and without bn_relu and
#               without its CUDA graph (PACER_CUDA_GRAPH=0) and without cuDNN's conv +
#               genstats (PACER_CONV_GENSTATS=0), the
#               step with batch norm's scalar NHWC kernels
#               (PACER_BN_SCALAR=1), the step with 1x1 convolutions through cuDNN
#               instead of GEMMs (PACER_CONV_1X1_GEMM=0), and Nsight Compute's per-kernel
#               duration / DRAM % / SM % over a window of a batch-64 step (NCU_SKIP,
#               NCU_COUNT launches; tools/ncu_summary.py), and the convolutions through
#               cuDNN's graph API (PACER_CUDNN_GRAPH=1: GPU tests, step, two layers; =0:
#               the step with the legacy API alone), into
#               profile.log
#   --no-bench  skip the benchmarks
#   --werror    build with PACER_WERROR=ON (off by default: another compiler's new warnings
#               must not cost the only build of a short lease)
# Environment: CUDA_ARCH (default 90; 90a for wgmma / TMA kernels), JOBS (default nproc),
# MEMCHECK_FILTER (with --prebuilt: the test cases memcheck runs, a doctest filter; default all),
# TEST_FILTER (with --prebuilt: the GPU test cases to run, a doctest filter such as
# 'cuda graph:*'; default all: a short first call with --no-bench proves the newest code),
# BUDGET_S (default 400: a phase that would start later is skipped), TOTAL_S (default 470:
# the benchmarks stop by then, skipping the cases left), OUT (when set, the logs
# are written straight there, so they come back even when the run is killed; 8 files at
# most: setup.log (info + configure), build.log, ctest.log, ctest_cpu.log or profile.log,
# memcheck.log, bench.jsonl, bench.log, summary.txt); else they go to build-gpu/logs.
#
# Every phase runs even when an earlier one failed (a failed build still leaves what did
# build to test and time); the exit status is non-zero when any phase failed or was skipped.
# Budget: under 8 minutes on an H100 (the build dominates).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CPU_TOO=0 MEMCHECK=0 BENCH=1 WERROR=OFF PREBUILT=0 PROFILE=0
for arg in "$@"; do
  case $arg in
    --prebuilt) PREBUILT=1 ;;
    --profile) PROFILE=1 ;;
    --cpu-too) CPU_TOO=1 ;;
    --memcheck) MEMCHECK=1 ;;
    --no-bench) BENCH=0 ;;
    --werror) WERROR=ON ;;
    *) echo "gpu_check: unknown option '$arg'" >&2; exit 2 ;;
  esac
done
B=$ROOT/build-gpu
PACER_BIN=$B/pacer
if ((PREBUILT)); then
  B=$ROOT/gpu-pre
  PACER_BIN=$B/bin/pacer
  if ((CPU_TOO)); then echo "gpu_check: --cpu-too needs a build (the CPU tests are not prebuilt)" >&2; exit 2; fi
fi
LOGS=${OUT:-$B/logs}
mkdir -p "$LOGS" "$B"
rm -f "$LOGS"/{setup.log,build.log,ctest.log,ctest_cpu.log,memcheck.log,profile.log,bench.jsonl,bench.log,summary.txt}
JOBS=${JOBS:-$(nproc)}
CUDA_ARCH=${CUDA_ARCH:-90}
BUDGET_S=${BUDGET_S:-400}
TOTAL_S=${TOTAL_S:-470}
START_EPOCH=$(date +%s)
T0=$SECONDS
FAILED=()
TIMES=()

# left RESERVE: seconds of TOTAL_S left after keeping RESERVE for what follows (30 at least);
# the long commands run under `timeout $(left N)` so that the later phases keep their time.
left() {
  local l=$((TOTAL_S - (SECONDS - T0) - $1))
  echo $((l > 30 ? l : 30))
}

# capped N CMD...: CMD under a timeout of N seconds, or of what is left of TOTAL_S (less 20 s)
# when that is less; skipped when less than 10 s are left (the profile's many runs must not
# outlive the lease's command).
capped() {
  local n=$1 l=$((TOTAL_S - (SECONDS - T0) - 20))
  shift
  if ((l < 10)); then
    echo "(skipped: TOTAL_S=$TOTAL_S reached)"
    return 0
  fi
  timeout $((l < n ? l : n)) "$@"
}

# phase NAME FUNCTION: runs FUNCTION in a subshell with set -e, records its status and time,
# and always returns 0 so that the next phase runs.
phase() {
  local name=$1 t=$SECONDS rc=0
  shift
  echo
  if ((SECONDS - T0 > BUDGET_S)); then
    echo "=== $name: SKIPPED, $((SECONDS - T0)) s spent of BUDGET_S=$BUDGET_S"
    TIMES+=("$(printf '%-10s %4d s  %s' "$name" 0 "SKIPPED (time)")")
    FAILED+=("$name(skipped)")
    return 0
  fi
  echo "=== $name (at $((SECONDS - T0)) s)"
  set +e
  (set -e; "$@")
  rc=$?
  set -e
  TIMES+=("$(printf '%-10s %4d s  %s' "$name" $((SECONDS - t)) "$([[ $rc == 0 ]] && echo ok || echo "FAILED (rc=$rc)")")")
  echo "=== $name: rc=$rc, $((SECONDS - t)) s"
  if ((rc != 0)); then FAILED+=("$name"); fi
  return 0
}

# --- discovery (no phase: everything below needs it) ----------------------------------
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(readlink -f "$NVCC")")")}
export PATH=$CUDA_HOME/bin:$PATH
# cuBLAS / cuDNN from PyTorch's wheels (site-packages/nvidia/*) where the toolkit lacks the
# header or the library: the roots (parents of include/) holding them, so that header and
# library come from one package; and every wheel lib folder holding .so files (cuDNN loads
# its engine libraries, cuBLAS cuBLASLt, from there at run time).
mapfile -t NV < <(python3 - "$CUDA_HOME" <<'EOF' 2>/dev/null || true
import glob, os, site, sys
cuda = sys.argv[1]
def in_toolkit(header, lib):
    libs = [d for d in (os.path.join(cuda, "lib64"), os.path.join(cuda, "targets/x86_64-linux/lib"))
            if glob.glob(os.path.join(d, lib + ".so*"))]
    return os.path.exists(os.path.join(cuda, "include", header)) and bool(libs)
bases = []
try:
    import nvidia
    bases += list(nvidia.__path__)
except Exception:
    pass
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    if os.path.isdir(os.path.join(sp, "nvidia")):
        bases.append(os.path.join(sp, "nvidia"))
wanted = {"cudnn.h": "libcudnn", "cublas_v2.h": "libcublas", "cublasLt.h": "libcublasLt"}
roots, libs = [], []
for base in dict.fromkeys(os.path.realpath(b) for b in bases):
    for dp, _, files in os.walk(base):
        for h, lib in wanted.items():
            r = os.path.dirname(dp)
            if h in files and not in_toolkit(h, lib) and r not in roots:
                roots.append(r)
        if any(".so" in f for f in files) and os.path.basename(dp) in ("lib", "lib64") and dp not in libs:
            libs.append(dp)
print(";".join(roots))
print(":".join(libs))
EOF
)
NV_ROOTS=${NV[0]:-}
NV_LIBS=${NV[1]:-}
# Pacer's binaries find deps/lib (fmt, zlib, libjpeg, OpenBLAS) through the build tree's RUNPATH;
# deps/lib is kept off LD_LIBRARY_PATH so the system's own zlib stays in force elsewhere.
# OpenBLAS's Fortran runtime is taken from deps/runtime only when the system has none (the
# linker needs it too, hence the variable is exported for the build as well).
RUNTIME_EXTRA=
if ! ldconfig -p 2>/dev/null | grep -q 'libgfortran\.so\.5 '; then RUNTIME_EXTRA=$ROOT/deps/runtime; fi
# Prebuilt binaries carry this machine's RUNPATH, so their libraries come through the path.
PREBUILT_LD=
if ((PREBUILT)); then PREBUILT_LD=$B/lib:$ROOT/deps/lib; fi
PACER_LD=$(echo "$PREBUILT_LD:$NV_LIBS:$RUNTIME_EXTRA:${LD_LIBRARY_PATH:-}" | tr -s ':' | sed 's/^://; s/:$//')

info() {
  echo "host: $(uname -srm), $(nproc) cores, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
  nvidia-smi -L || echo "nvidia-smi: not found"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
  # (A prebuilt-only machine may lack the build tools: say so and go on.)
  { "$NVCC" --version | tail -n 2; } 2>/dev/null || echo "nvcc: not found"
  echo "CUDA_HOME $CUDA_HOME"
  { cmake --version | head -n 1; } 2>/dev/null || echo "cmake: not found"
  echo "ninja $(ninja --version 2>/dev/null || echo 'not found')"
  echo "c++: $(c++ --version 2>/dev/null | head -n 1 || echo 'not found')"
  command -v compute-sanitizer || ls "$CUDA_HOME"/bin/compute-sanitizer 2>/dev/null || echo "compute-sanitizer: not found"
  python3 -c 'import torch, sys
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version())
print("torch device:", torch.cuda.get_device_name() if torch.cuda.is_available() else "NO CUDA DEVICE")' || true
  echo "cuBLAS/cuDNN roots (PACER_CUDA_EXTRA_ROOTS): ${NV_ROOTS:-none (all in the toolkit)}"
  echo "nvidia lib folders: ${NV_LIBS:-none}"
  for h in cudnn.h cublas_v2.h cublasLt.h; do
    # shellcheck disable=SC2086  # the folder lists are split into words on purpose
    echo "  $h: $(find "$CUDA_HOME/include" ${NV_ROOTS//;/ } -maxdepth 2 -name "$h" 2>/dev/null | head -n 1)"
  done
  # libnvrtc: loaded with dlopen by the fused pointwise kernels (ops/cuda/nvrtc.cpp).
  for l in libcudnn.so.9 libcublas.so.13 libcublasLt.so.13 libcublas.so.12 libnvrtc.so.13 libnvrtc.so.12; do
    # shellcheck disable=SC2086
    echo "  $l: $(find "$CUDA_HOME/lib64" ${NV_LIBS//:/ } -maxdepth 1 -name "$l" 2>/dev/null | head -n 1)"
  done
  echo "libgfortran.so.5 from: ${RUNTIME_EXTRA:-the system}"
  echo "deps: $(du -sh deps | cut -f1)"
  head -n 2 deps/MANIFEST.txt
  df -h . | tail -n 1
}

# OpenBLAS travels compressed (tools/gather_gpu_deps.sh); unpack it once.
unpack_deps() {
  [[ -d deps ]] || { echo "deps/ is missing: run tools/gather_gpu_deps.sh here and carry deps"; return 1; }
  if [[ ! -f deps/lib/libopenblas.so.0 ]]; then
    python3 -c 'import lzma, sys; d = lzma.open(sys.argv[1]).read(); [open(p, "wb").write(d) for p in sys.argv[2:]]' \
      deps/lib/libopenblas.so.0.xz deps/lib/libopenblas.so.0 deps/lib/libopenblas.so
  fi
  ls -la deps/lib
  if ((PREBUILT)); then
    [[ -d $B/bin ]] || { echo "gpu-pre/ is missing: run tools/pack_gpu_prebuilt.sh here and carry gpu-pre"; return 1; }
    local xz
    for xz in "$B"/lib/*.xz; do
      [[ -f ${xz%.xz} ]] || python3 -c 'import lzma, sys; open(sys.argv[2], "wb").write(lzma.open(sys.argv[1]).read())' "$xz" "${xz%.xz}"
    done
    cat "$B/MANIFEST.txt"
    ls -la "$B/bin" "$B/lib"
  fi
}

# The prebuilt binaries: every library they need is found, and they start.
check_prebuilt() {
  local missing
  missing=$(LD_LIBRARY_PATH=$PACER_LD ldd "$B/bin/pacer" "$B/bin/test_gpu" | grep 'not found' | sort -u || true)
  LD_LIBRARY_PATH=$PACER_LD ldd "$B/bin/pacer" | grep -E 'cud|cubl|fmt|jpeg|openblas|stdc' || true
  if [[ -n $missing ]]; then echo "missing libraries:"; echo "$missing"; return 1; fi
  LD_LIBRARY_PATH=$PACER_LD "$B/bin/test_gpu" --list-test-cases | tail -n 1
}

configure() {
  local rc=0
  echo "=== configure" >>"$LOGS/setup.log"
  cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPACER_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" \
    -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DPACER_DEPS_ROOT="$ROOT/deps" -DPACER_CUDA_EXTRA_ROOTS="$NV_ROOTS" \
    -DPACER_ARCH_FLAGS=-march=x86-64-v3 -DPACER_WERROR=$WERROR >>"$LOGS/setup.log" 2>&1 || rc=$?
  sed -n '/^=== configure/,$p' "$LOGS/setup.log" | grep -E 'Pacer:|Error|error|Warning' | head -n 40 || true
  tail -n 3 "$LOGS/setup.log"
  return $rc
}

build() {
  # -k 0: build everything that can be built, so the tests and benches of the rest still run.
  # The test binaries run at build time (doctest_discover_tests), hence LD_LIBRARY_PATH.
  local rc=0
  LD_LIBRARY_PATH=$PACER_LD timeout "$(left 150)" ninja -C "$B" -j "$JOBS" -k 0 >"$LOGS/build.log" 2>&1 || rc=$?
  grep -E '^FAILED|error|warning' "$LOGS/build.log" | head -n 60 || true
  tail -n 3 "$LOGS/build.log"
  return $rc
}

# run_cases EXE LOG: each test case of a doctest binary in a process of its own, 4 at a time,
# each capped at 120 s (all of them: TOTAL_S less 250 s for the benchmarks); their outputs in LOG in listing order; a summary line like ctest's.
# The inner timeout stays in the foreground (the outer one's process group), so when the
# outer one fires no test goes on into the benchmarks; cases that never ran say so. Exit
# status 77 (no usable CUDA device) counts as skipped, as ctest counts it.
run_cases() {
  local exe=$1 log=$2 dir
  dir=$(mktemp -d)
  LD_LIBRARY_PATH=$PACER_LD "$exe" --list-test-cases ${TEST_FILTER:+"--test-case=$TEST_FILTER"} |
    sed '1,2d; /^=====/,$d' >"$dir/cases"
  # doctest filters split at commas and match wildcards: a comma becomes the one-character '?'.
  local t=$SECONDS
  local n=0 name
  while IFS= read -r name; do
    n=$((n + 1))
    printf '%s\0%s\0' "$n" "$name"
  done <"$dir/cases" | LD_LIBRARY_PATH=$PACER_LD timeout "$(left 250)" xargs -0 -n 2 -P 4 bash -c '
    f=${2//,/?}
    timeout --foreground 120 "$0" --test-case="$f" >"'"$dir"'/$1.log" 2>&1
    echo $? >"'"$dir"'/$1.rc"' "$exe"
  local pass=0 fail=0 skip=0 i=0
  : >"$log"
  while IFS= read -r name; do
    i=$((i + 1))
    local rc
    rc=$(cat "$dir/$i.rc" 2>/dev/null || echo none)
    if [[ $rc == 0 ]]; then pass=$((pass + 1)); echo "PASS: $name" >>"$log"
    elif [[ $rc == 77 ]]; then skip=$((skip + 1)); echo "SKIPPED: $name" >>"$log"
    elif [[ $rc == none ]]; then fail=$((fail + 1)); echo "***NOT RUN (out of time): $name" >>"$log"
    else fail=$((fail + 1)); echo "***FAILED rc=$rc: $name" >>"$log"; fi
    { sed 's/^/    /' "$dir/$i.log" | tail -n 60; } 2>/dev/null >>"$log" || true
  done <"$dir/cases"
  echo "$((pass * 100 / (pass + fail > 0 ? pass + fail : 1)))% tests passed, $fail tests failed out of $((pass + fail)), $skip skipped ($((SECONDS - t)) s)" >>"$log"
  rm -rf "$dir"
  ((fail == 0 && pass > 0))  # all skipped: no GPU test ran, which is no pass
}

gpu_tests() {
  local rc=0
  if ((PREBUILT)); then
    run_cases "$B/bin/test_gpu" "$LOGS/ctest.log" || rc=$?
    grep -E '\*\*\*' "$LOGS/ctest.log" | head -n 60 || true
    tail -n 1 "$LOGS/ctest.log"
    return $rc
  fi
  LD_LIBRARY_PATH=$PACER_LD timeout "$(left 120)" ctest --test-dir "$B" -L gpu --output-on-failure --no-tests=error \
    -j 4 --timeout 180 \
    >"$LOGS/ctest.log" 2>&1 || rc=$?
  grep -E '\*\*\*|Failed|Not Run' "$LOGS/ctest.log" | head -n 60 || true
  tail -n 5 "$LOGS/ctest.log"
  return $rc
}

cpu_tests() {
  # install_consumer configures a project of its own: it finds fmt & co. through the env.
  local rc=0
  CMAKE_PREFIX_PATH=$ROOT/deps LD_LIBRARY_PATH=$PACER_LD timeout "$(left 120)" ctest --test-dir "$B" -LE gpu \
    --output-on-failure \
    -j "$JOBS" --timeout 300 >"$LOGS/ctest_cpu.log" 2>&1 || rc=$?
  grep -E '\*\*\*|Failed|Not Run' "$LOGS/ctest_cpu.log" | head -n 40 || true
  tail -n 5 "$LOGS/ctest_cpu.log"
  return $rc
}

# compute-sanitizer memcheck over each executable that holds gpu-labelled tests, limited to
# those tests, each binary capped at 150 s.
memcheck() {
  local cs
  cs=$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")
  local rc=0 n=0 exe filter
  while IFS=$'\t' read -r exe filter; do
    n=$((n + 1))
    echo "--- memcheck $exe ($filter)" | cut -c1-300 | tee -a "$LOGS/memcheck.log"
    LD_LIBRARY_PATH=$PACER_LD timeout "$(left 120)" "$cs" --tool memcheck --error-exitcode 99 --print-limit 20 \
      "$exe" "--test-case=$filter" >>"$LOGS/memcheck.log" 2>&1 || rc=1
    tail -n 5 "$LOGS/memcheck.log"
  done < <(if ((PREBUILT)); then printf '%s\t%s\n' "$B/bin/test_gpu" "${MEMCHECK_FILTER:-*}"; else ctest --test-dir "$B" -L gpu --show-only=json-v1 | python3 -c '
import json, sys
tests = json.load(sys.stdin)["tests"]
by_exe = {}
for t in tests:
    cmd = t.get("command") or []
    if not cmd:
        continue
    case = next((a.split("=", 1)[1] for a in cmd[1:] if a.startswith("--test-case=")), "*")
    by_exe.setdefault(cmd[0], []).append(case)  # doctest_discover_tests has escaped its commas
for exe, cases in by_exe.items():
    print(exe + "\t" + ("*" if "*" in cases else ",".join(cases)))'; fi)
  if ((n == 0)); then echo "memcheck: no executable holds gpu-labelled tests"; return 1; fi
  return $rc
}

bench() {
  [[ -x $PACER_BIN ]] || { echo "no $PACER_BIN (build failed); PyTorch's side still runs"; }
  PACER_ENV="LD_LIBRARY_PATH=$PACER_LD" BENCH_DEADLINE=$((START_EPOCH + TOTAL_S - 15)) bash bench/compare_gpu.sh "$PACER_BIN" "$LOGS/bench.jsonl" 2>"$LOGS/bench.log" \
    | tee "$B/bench_table.txt"
}

# Each measurement's failure is printed and the next one still runs.
profile_step() {
  local args=(--device cuda --batch 256 --image-size 224 --precision 16-mixed --channels-last)
  {
    echo "--- pacer graph resnet50 ${args[*]} --profile"
    LD_LIBRARY_PATH=$PACER_LD timeout "$(left 200)" "$PACER_BIN" graph resnet50 "${args[@]}" --profile 2>&1 | tail -n 40 || echo "(failed)"
    echo "--- resnet50-step graph, default passes, then without bn_relu (its CUDA fusion A/B)"
    for passes in default cse,dce,conv_bn,cast_elim,gemm_epilogue,softmax_xent,pointwise_fusion,amp_skip,multi_tensor; do
      LD_LIBRARY_PATH=$PACER_LD capped 120 "$PACER_BIN" bench resnet50-step "${args[@]}" --mode graph \
        --passes "$passes" --warmup 3 --repeat 10 2>&1 | tail -n 1 || echo "(failed)"
    done
    echo "--- resnet50-step graph, default passes, without the CUDA graph (PACER_CUDA_GRAPH=0: its A/B)"
    PACER_CUDA_GRAPH=0 LD_LIBRARY_PATH=$PACER_LD capped 120 "$PACER_BIN" bench resnet50-step "${args[@]}" \
      --mode graph --warmup 3 --repeat 10 2>&1 | tail -n 1 || echo "(failed)"
    echo "--- resnet50-step graph, conv_bn without cuDNN's genstats (PACER_CONV_GENSTATS=0: its A/B)"
    PACER_CONV_GENSTATS=0 LD_LIBRARY_PATH=$PACER_LD capped 120 "$PACER_BIN" bench resnet50-step "${args[@]}" \
      --mode graph --warmup 3 --repeat 10 2>&1 | tail -n 1 || echo "(failed)"
    echo "--- resnet50-step eager, batch norm through the scalar NHWC kernels (PACER_BN_SCALAR=1)"
    PACER_BN_SCALAR=1 LD_LIBRARY_PATH=$PACER_LD capped 90 "$PACER_BIN" bench resnet50-step "${args[@]}" \
      --warmup 3 --repeat 10 2>&1 | tail -n 1 || echo "(failed)"
    echo "--- resnet50-step eager, 1x1 convolutions through cuDNN (PACER_CONV_1X1_GEMM=0)"
    PACER_CONV_1X1_GEMM=0 LD_LIBRARY_PATH=$PACER_LD capped 90 "$PACER_BIN" bench resnet50-step "${args[@]}" \
      --warmup 3 --repeat 10 2>&1 | tail -n 3 || echo "(failed)"
    # cuDNN's graph API for the convolutions (ops/cuda/conv_graph.h; by default taken per
    # problem where it measured faster, PACER_CUDNN_GRAPH=1 always, =0 never): its correctness
    # on the GPU tests that convolve in half precision, then the step and one 3x3 and one 1x1
    # layer with it, and the step with the legacy API alone (the default's A/B).
    local test_bin=$B/bin/test_gpu
    [[ -x $test_bin ]] || test_bin=$B/tests/test_gpu
    echo "--- PACER_CUDNN_GRAPH=1: GPU tests (channels-last, f16 / bf16 op table)"
    PACER_CUDNN_GRAPH=1 LD_LIBRARY_PATH=$PACER_LD capped 120 "$test_bin" \
      "--test-case=cuda channels-last*,cuda parity: every op-table row??f16*" 2>&1 | tail -n 12 || echo "(failed)"
    echo "--- PACER_CUDNN_GRAPH=1: resnet50-step eager, conv s1_3x3 and reduce1x1 (fwd + bwd)"
    PACER_CUDNN_GRAPH=1 LD_LIBRARY_PATH=$PACER_LD capped 90 "$PACER_BIN" bench resnet50-step "${args[@]}" \
      --warmup 3 --repeat 10 2>&1 | tail -n 2 || echo "(failed)"
    echo "--- PACER_CUDNN_GRAPH=0: resnet50-step graph (+ CUDA graph), the legacy API only"
    PACER_CUDNN_GRAPH=0 LD_LIBRARY_PATH=$PACER_LD capped 120 "$PACER_BIN" bench resnet50-step "${args[@]}" \
      --mode graph --warmup 3 --repeat 10 2>&1 | tail -n 1 || echo "(failed)"
    for conv in "64 56 64 3 1 1" "256 56 64 1 1 0"; do
      read -r c hw k ks st pad <<<"$conv"
      PACER_CUDNN_GRAPH=1 PACER_CONV_1X1_GEMM=0 LD_LIBRARY_PATH=$PACER_LD capped 60 "$PACER_BIN" bench conv2d \
        --device cuda --n 256 \
        --c "$c" --h "$hw" --w "$hw" --k "$k" --kernel "$ks" --stride "$st" --padding "$pad" --dtype f16 \
        --channels-last --backward --warmup 3 --repeat 10 2>&1 | tail -n 1 || echo "(failed)"
    done
    # Kernel by kernel (Nsight Compute, SpeedOfLight: duration, DRAM and SM throughput as a
    # share of peak) over a window of the third eager step at batch 64 (~4.5k launches a
    # step; cuDNN's heuristics, so that no algorithm search adds launches before it).
    local ncu
    ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1 || true)
    if [[ -n $ncu ]]; then
      echo "--- ncu: resnet50-step batch 64, launches ${NCU_SKIP:-9200}..+${NCU_COUNT:-1500}, by kernel"
      PACER_CUDNN_BENCHMARK=0 LD_LIBRARY_PATH=$PACER_LD timeout "$(left 150)" "$ncu" --clock-control none \
        --section SpeedOfLight --csv --launch-skip "${NCU_SKIP:-9200}" --launch-count "${NCU_COUNT:-1500}" \
        "$PACER_BIN" bench resnet50-step \
        --device cuda --batch 64 --image-size 224 --precision 16-mixed --channels-last --warmup 2 --repeat 1 \
        2>/dev/null | python3 tools/ncu_summary.py || echo "ncu: failed"
    else
      echo "--- ncu: not found"
    fi
  } >"$LOGS/profile.log"
  tail -n 60 "$LOGS/profile.log"
}

info_logged() { info 2>&1 | tee -a "$LOGS/setup.log"; }

rm -f "$B/bench_table.txt"
phase info info_logged
phase deps unpack_deps
if ((PREBUILT)); then
  phase prebuilt check_prebuilt
else
  phase configure configure
  phase build build
fi
phase gpu-tests gpu_tests
if ((CPU_TOO)); then phase cpu-tests cpu_tests; fi
if ((MEMCHECK)); then phase memcheck memcheck; fi
if ((PROFILE)); then phase profile profile_step; fi
if ((BENCH)); then phase bench bench; fi

{
  echo
  echo "=== summary ($((SECONDS - T0)) s in all)"
  printf '%s\n' "${TIMES[@]}"
  if [[ -f $LOGS/ctest.log ]]; then grep -E 'tests passed|tests failed' "$LOGS/ctest.log" | sed 's/^/gpu tests: /' || true; fi
  if [[ -f $LOGS/ctest_cpu.log ]]; then grep -E 'tests passed|tests failed' "$LOGS/ctest_cpu.log" | sed 's/^/cpu tests: /' || true; fi
  if [[ -f $B/bench_table.txt ]]; then echo; cat "$B/bench_table.txt"; fi
  if ((${#FAILED[@]})); then echo "FAILED: ${FAILED[*]}"; else echo "ALL PASSED"; fi
} | tee "$LOGS/summary.txt"
# Files over 16 MiB do not come back from the GPU machine: keep their ends.
for f in "$LOGS"/*; do
  if (($(stat -c %s "$f") > 15000000)); then tail -c 15000000 "$f" >"$f.tmp" && mv "$f.tmp" "$f"; fi
done
((${#FAILED[@]} == 0))
