#!/usr/bin/env bash
# Issue 7 on the CPU: the ResNet-50 training step (batch 8, 224, 32) eager, captured
# (graph: passes + static executor) and PyTorch eager, 3 interleaved triples, medians;
# plus `pacer graph resnet50 --json`'s launch and peak-memory summary. Same conventions as
# compare.sh (2 threads, OpenBLAS variables unset on both sides).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
ARGS=(resnet50-step --batch 8 --image-size 224 --repeat 3 --warmup 1 --json --threads "$THREADS")
for i in 1 2 3; do
  echo "[compare_graph] triple $i/3" >&2
  "${CLEAN_ENV[@]}" ./build/pacer bench "${ARGS[@]}" --mode eager | tail -n 1 >> "$tmp/eager"
  "${CLEAN_ENV[@]}" ./build/pacer bench "${ARGS[@]}" --mode graph | tail -n 1 >> "$tmp/graph"
  "${CLEAN_ENV[@]}" /usr/bin/python3 bench/torch_bench.py "${ARGS[@]}" | tail -n 1 >> "$tmp/torch"
done
med() { jq -s "map(.$2) | sort | .[1]" "$1"; }
e=$(med "$tmp/eager" throughput)
g=$(med "$tmp/graph" throughput)
t=$(med "$tmp/torch" throughput)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '| %s | %s | %s | resnet50-step B8 224 f32, eager | %.2f img/s | %.2f img/s | %s |\n' "$date" "$machine" "$commit" "$e" "$t" "$(ratio "$e" "$t")"
printf '| %s | %s | %s | resnet50-step B8 224 f32, graph | %.2f img/s | %.2f img/s | %s |\n' "$date" "$machine" "$commit" "$g" "$t" "$(ratio "$g" "$t")"
printf '| %s | %s | %s | resnet50-step B8 224 f32, graph time / eager time | %.0f ms | (eager %.0f ms) | %s |\n' "$date" "$machine" "$commit" \
  "$(med "$tmp/graph" median_ms)" "$(med "$tmp/eager" median_ms)" "$(ratio "$(med "$tmp/graph" median_ms)" "$(med "$tmp/eager" median_ms)")"
"${CLEAN_ENV[@]}" ./build/pacer graph resnet50 --batch 8 --image-size 224 --threads "$THREADS" --json | tail -n 1
