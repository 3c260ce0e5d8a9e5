#!/usr/bin/env bash
# Pacer vs PyTorch conv2d forward + backward at ResNet-50 layer shapes (batch 8, 224 input):
# the 7x7 stem, one 3x3 per stage, a 1x1 reduce and a 1x1 expand. Prints RESULTS.md rows
# and the geometric mean of the time ratios Pacer / PyTorch (issue 3 target: <= 1.25).
# Same conventions as compare.sh: 2 threads, OpenBLAS variables unset on both sides,
# 3 interleaved pairs per shape, median of the per-run medians.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

# name: n c h w k kernel stride padding
shapes=(
  "stem7x7:8 3 224 224 64 7 2 3"
  "s1_3x3:8 64 56 56 64 3 1 1"
  "s2_3x3:8 128 28 28 128 3 1 1"
  "s3_3x3:8 256 14 14 256 3 1 1"
  "s4_3x3:8 512 7 7 512 3 1 1"
  "reduce1x1:8 256 56 56 64 1 1 0"
  "expand1x1:8 64 56 56 256 1 1 0"
)

log_sum=0
count=0
for entry in "${shapes[@]}"; do
  name=${entry%%:*}
  read -r n c h w k ks st pad <<< "${entry#*:}"
  args=(conv2d --n "$n" --c "$c" --h "$h" --w "$w" --k "$k" --kernel "$ks" --stride "$st" --padding "$pad"
        --backward --repeat 3 --warmup 1 --json --threads "$THREADS")
  for i in 1 2 3; do
    echo "[compare_conv] $name pair $i/3" >&2
    "${CLEAN_ENV[@]}" ./build/pacer bench "${args[@]}" | tail -n 1 >> "$tmp/$name.pacer"
    "${CLEAN_ENV[@]}" /usr/bin/python3 bench/torch_bench.py "${args[@]}" | tail -n 1 >> "$tmp/$name.torch"
  done
  p=$(jq -s 'map(.median_ms) | sort | .[1]' "$tmp/$name.pacer")
  t=$(jq -s 'map(.median_ms) | sort | .[1]' "$tmp/$name.torch")
  ratio=$(awk -v a="$p" -v b="$t" 'BEGIN { print a / b }')
  log_sum=$(awk -v s="$log_sum" -v r="$ratio" 'BEGIN { print s + log(r) }')
  count=$((count + 1))
  printf '| %s | %s | %s | conv2d fwd+bwd %s (n%s c%s %sx%s k%s %sx%s/%s) | %.1f ms | %.1f ms | %.2f (time) |\n' \
    "$date" "$machine" "$commit" "$name" "$n" "$c" "$h" "$w" "$k" "$ks" "$ks" "$st" "$p" "$t" "$ratio"
done
printf '| %s | %s | %s | conv2d fwd+bwd geometric mean of time ratios | | | %.2f (time) |\n' \
  "$date" "$machine" "$commit" "$(awk -v s="$log_sum" -v c="$count" 'BEGIN { print exp(s / c) }')"
