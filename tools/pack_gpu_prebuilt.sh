#!/usr/bin/env bash
# Builds HERE what tools/gpu_check.sh --prebuilt runs on the GPU machine, so that a short lease
# is spent on tests and benchmarks instead of a compile: the `pacer` CLI and the GPU test
# binary, for sm_90 (H100 / H200) and a portable CPU target (the GPU machine's processor is
# another x86-64 model, so no -march=native), with the Pacer shared libraries beside them.
# This machine's glibc and libstdc++ are older than the GPU image's, so what is built here
# runs there; cuDNN, cuBLAS and the CUDA runtime come from that machine's Python wheels.
#
#   tools/pack_gpu_prebuilt.sh      (from anywhere; a few minutes with a warm ccache, about
#                                    40 on 2 cores without)
#
# Output: gpu-pre/ (git-ignored): bin/{pacer,test_gpu}, lib/libpacer_*.so.0 (the big op
# library travels xz-compressed; gpu_check.sh unpacks it), MANIFEST.txt (commit, flags).
# Then, through the device tool: command "bash tools/gpu_check.sh --prebuilt", carry
# ["deps", "gpu-pre"] (tools/gather_gpu_deps.sh makes deps/).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-gpu-pre
P=gpu-pre
ARCH=${CUDA_ARCH:-90}
if [[ ! -f $B/CMakeCache.txt ]]; then
  cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPACER_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
    -DPACER_ARCH_FLAGS=-march=x86-64-v3 -DPACER_WERROR=OFF
fi
ninja -C "$B" -j "${JOBS:-2}" pacer test_gpu
rm -rf "$P"
mkdir -p "$P/bin" "$P/lib"
cp "$B/pacer" "$B/tests/test_gpu" "$P/bin/"
for lib in "$B"/*/libpacer_*.so.0; do
  if [[ $(basename "$lib") == libpacer_ops.so.0 ]]; then
    python3 - "$lib" "$P/lib/libpacer_ops.so.0.xz" <<'EOF'
import lzma, sys
with open(sys.argv[1], "rb") as f, lzma.open(sys.argv[2], "wb", preset=6) as g:
    g.write(f.read())
EOF
  else
    cp -L "$lib" "$P/lib/"
  fi
done
# Every library the binaries need must be found there: Pacer's (here), deps/ (fmt, libjpeg,
# zlib, OpenBLAS), the CUDA wheels (cudart, cuBLAS, cuDNN) or the system.
{
  echo "Pacer prebuilt for the GPU machine: commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/RESULTS.md' || echo '+dirty'), $(date -u +%FT%RZ)"
  echo "CUDA arch $ARCH, -march=x86-64-v3, $(c++ --version | head -n 1), $(nvcc --version | tail -n 1)"
  echo "needs: $(objdump -p "$B/pacer" "$B"/*/libpacer_*.so.0 "$B/tests/test_gpu" | awk '/NEEDED/ {print $2}' | sort -u | grep -v '^libpacer' | tr '\n' ' ')"
} >"$P/MANIFEST.txt"
cat "$P/MANIFEST.txt"
du -sh "$P" deps 2>/dev/null || true
