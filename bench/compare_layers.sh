#!/usr/bin/env bash
# Pacer vs PyTorch for the issue-3 layer benchmarks: an LSTM layer (hidden 1024, batch 64,
# 50 steps, forward + backward; target Pacer/PyTorch time <= 1.25) and training batch norm
# forward + backward (target >= 60% of memcpy bandwidth). Same conventions as compare.sh:
# 2 threads, OpenBLAS variables unset on both sides, 3 interleaved pairs, median of medians.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

# run NAME ARGS...: 3 interleaved pairs; JSON lines into $tmp/NAME.{pacer,torch}.
run() {
  local name=$1
  shift
  for i in 1 2 3; do
    echo "[compare_layers] $name pair $i/3" >&2
    "${CLEAN_ENV[@]}" ./build/pacer bench "$@" --json --threads "$THREADS" | tail -n 1 >> "$tmp/$name.pacer"
    "${CLEAN_ENV[@]}" /usr/bin/python3 bench/torch_bench.py "$@" --json --threads "$THREADS" | tail -n 1 >> "$tmp/$name.torch"
  done
}
med() { jq -s "map(.$2) | sort | .[1]" "$1"; }

run lstm lstm --hidden 1024 --batch 64 --steps 50 --backward --repeat 3 --warmup 1
run bn batchnorm --n 8 --c 64 --h 112 --w 112 --backward --repeat 5 --warmup 1

p=$(med "$tmp/lstm.pacer" median_ms)
t=$(med "$tmp/lstm.torch" median_ms)
printf '| %s | %s | %s | lstm fwd+bwd H1024 B64 T50 f32 | %.0f ms | %.0f ms | %.2f (time) |\n' \
  "$date" "$machine" "$commit" "$p" "$t" "$(awk -v a="$p" -v b="$t" 'BEGIN { print a / b }')"
printf '| %s | %s | %s | batchnorm train fwd+bwd 8x64x112x112 f32 | %.1f GB/s (%.0f%% of memcpy %.1f GB/s) | %.1f GB/s (%.0f%% of memcpy %.1f GB/s) | %.2f |\n' \
  "$date" "$machine" "$commit" \
  "$(med "$tmp/bn.pacer" throughput)" "$(awk -v f="$(med "$tmp/bn.pacer" fraction_of_memcpy)" 'BEGIN { print 100 * f }')" \
  "$(med "$tmp/bn.pacer" memcpy_gbps)" \
  "$(med "$tmp/bn.torch" throughput)" "$(awk -v f="$(med "$tmp/bn.torch" fraction_of_memcpy)" 'BEGIN { print 100 * f }')" \
  "$(med "$tmp/bn.torch" memcpy_gbps)" \
  "$(awk -v a="$(med "$tmp/bn.pacer" throughput)" -v b="$(med "$tmp/bn.torch" throughput)" 'BEGIN { print a / b }')"
