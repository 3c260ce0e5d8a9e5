#!/usr/bin/env bash
# Pacer vs PyTorch on the four `pacer bench` cases; prints bench/RESULTS.md table rows.
#
#   bench/compare.sh            (from anywhere; progress goes to stderr, rows to stdout)
#
# Each case runs as 3 pairs (Pacer, then PyTorch, interleaved so slow drift on a noisy
# machine hits both sides alike); a cell is the median of the three per-run medians.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

PACER=("${CLEAN_ENV[@]}" ./build/pacer bench)
TORCH=("${CLEAN_ENV[@]}" /usr/bin/python3 bench/torch_bench.py)  # Debian's python3-torch

# pair NAME TORCH_EXTRA_ENV CASE ARGS...: 3 interleaved runs of each side; JSON lines
# are appended to $tmp/NAME.pacer and $tmp/NAME.torch. TORCH_EXTRA_ENV ("" for none)
# is VAR=VALUE words passed to env for the PyTorch side only.
pair() {
  local name=$1 extra=$2
  shift 2
  for i in 1 2 3; do
    echo "[compare] $name: pacer $i/3" >&2
    "${PACER[@]}" "$@" --json --threads "$THREADS" | tail -n 1 >>"$tmp/$name.pacer"
    echo "[compare] $name: pytorch $i/3" >&2
    # shellcheck disable=SC2086  # $extra is deliberately split into VAR=VALUE words
    env $extra "${TORCH[@]}" "$@" --json --threads "$THREADS" | tail -n 1 >>"$tmp/$name.torch"
  done
}

# med FILE FIELD: median over the JSON lines of FILE (3 lines: the middle one).
med() { jq -s "map(.$2) | sort | .[length / 2 | floor]" "$1"; }

pair gemm "" gemm --m 2048 --n 2048 --k 2048 --dtype f32
pair add "" add --numel 16777216 --dtype f32
pair dispatch "" dispatch
# One epoch takes seconds, so fewer runs than the default 10 (both sides alike).
pair mlp "" mlp-epoch --batch 64 --repeat 3 --warmup 1
# Debian's torch spins its OpenMP workers while OpenBLAS's own pthreads want the same 2
# cores; with passive OpenMP waiting PyTorch is many times faster, so report that too.
pair mlp-passive "OMP_WAIT_POLICY=passive" mlp-epoch --batch 64 --repeat 3 --warmup 1

# row NAME LABEL FORMAT [EXTRA_FIELD EXTRA_FORMAT]: one table row; cells are the median
# throughput with its unit (and optionally a second median field), ratio = Pacer / PyTorch.
# shellcheck disable=SC2059  # the number formats are passed in on purpose
row() {
  local name=$1 label=$2 fmt=$3 extra=${4:-} efmt=${5:-}
  local unit p t pc tc
  unit=$(jq -r .unit "$tmp/$name.pacer" | head -n 1)
  p=$(med "$tmp/$name.pacer" throughput)
  t=$(med "$tmp/$name.torch" throughput)
  pc=$(printf "$fmt %s" "$p" "$unit")
  tc=$(printf "$fmt %s" "$t" "$unit")
  if [[ -n $extra ]]; then
    pc+=$(printf " ($efmt)" "$(med "$tmp/$name.pacer" "$extra")")
    tc+=$(printf " ($efmt)" "$(med "$tmp/$name.torch" "$extra")")
  fi
  printf '| %s | %s | %s | %s | %s | %s | %.2f |\n' "$date" "$machine" "$commit" "$label" "$pc" "$tc" \
    "$(awk -v a="$p" -v b="$t" 'BEGIN { print a / b }')"
}

row gemm "gemm 2048x2048x2048 f32" "%.1f"
row add "add 16777216 f32" "%.2f"
printf '| %s | %s | %s | add vs memcpy | %.0f%% of memcpy %.1f GB/s | %.0f%% of memcpy %.1f GB/s | — |\n' \
  "$date" "$machine" "$commit" \
  "$(awk -v f="$(med "$tmp/add.pacer" fraction_of_memcpy)" 'BEGIN { print 100 * f }')" \
  "$(med "$tmp/add.pacer" memcpy_gbps)" \
  "$(awk -v f="$(med "$tmp/add.torch" fraction_of_memcpy)" 'BEGIN { print 100 * f }')" \
  "$(med "$tmp/add.torch" memcpy_gbps)"
row dispatch "dispatch (autograd 1-element add)" "%.0f" median_us "%.3f us/call"
row mlp "mlp-epoch batch 64" "%.0f" median_ms "%.0f ms/epoch"
row mlp-passive "mlp-epoch batch 64, PyTorch OMP_WAIT_POLICY=passive" "%.0f" median_ms "%.0f ms/epoch"
