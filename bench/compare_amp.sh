#!/usr/bin/env bash
# Pacer vs PyTorch for issues 5 and 6 on the CPU: a Fashion-MNIST CNN training step at
# each precision (target: bf16-mixed no slower than 32), a ResNet-50 training step (batch 8,
# 224, 32; target >= 1.0x PyTorch img/s), and the JPEG training pipeline on one core
# (target >= 1.5x torchvision per core). Same conventions as compare.sh: 2 threads,
# OpenBLAS variables unset on both sides, 3 interleaved pairs, median of medians.
# Needs a prepared ImageFolder: build/pacer prepare fashion-mnist --out /tmp/fmnist (PIPE_DATA),
# and for the ImageNet-sized row bench/make_photo_jpegs.py --out /tmp/photos (PHOTO_DATA).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
PIPE_DATA=${PIPE_DATA:-/tmp/fmnist/train}
PHOTO_DATA=${PHOTO_DATA:-/tmp/photos}

run() {  # run NAME SIDES ARGS...: SIDES is "both" or "pacer"
  local name=$1 sides=$2
  shift 2
  for i in 1 2 3; do
    echo "[compare_amp] $name pair $i/3" >&2
    "${CLEAN_ENV[@]}" ./build/pacer bench "$@" --json --threads "$THREADS" | tail -n 1 >> "$tmp/$name.pacer"
    if [ "$sides" = both ]; then
      "${CLEAN_ENV[@]}" /usr/bin/python3 bench/torch_bench.py "$@" --json --threads "$THREADS" | tail -n 1 >> "$tmp/$name.torch"
    fi
  done
}
med() { jq -s "map(.$2) | sort | .[1]" "$1"; }
row() {  # row CASE NAME UNIT: throughput rows (ratio = Pacer / PyTorch)
  local p t
  p=$(med "$tmp/$2.pacer" throughput)
  if [ -f "$tmp/$2.torch" ]; then
    t=$(med "$tmp/$2.torch" throughput)
    printf '| %s | %s | %s | %s | %.1f %s | %.1f %s | %.2f |\n' "$date" "$machine" "$commit" "$1" "$p" "$3" "$t" "$3" \
      "$(awk -v a="$p" -v b="$t" 'BEGIN { print a / b }')"
  else
    printf '| %s | %s | %s | %s | %.1f %s | - | - |\n' "$date" "$machine" "$commit" "$1" "$p" "$3"
  fi
}

for prec in 32 bf16-mixed; do run "cnn_$prec" both train-step --model cnn --batch 64 --precision "$prec" --repeat 9 --warmup 2; done
for prec in 16-mixed 16-O2; do run "cnn_$prec" pacer train-step --model cnn --batch 64 --precision "$prec" --repeat 9 --warmup 2; done
run resnet both resnet50-step --batch 8 --image-size 224 --repeat 3 --warmup 1
pipeline() {  # pipeline NAME DIR IMAGES: one core each, Pacer's loader with 1 thread, torchvision with 1 worker
  [ -d "$2" ] || return 0
  for i in 1 2 3; do
    "${CLEAN_ENV[@]}" ./build/pacer bench imagefolder-pipeline --data "$2" --loader-threads 1 --size 224 \
      --images "$3" --repeat 3 --warmup 1 --json | tail -n 1 >> "$tmp/$1.pacer"
    "${CLEAN_ENV[@]}" /usr/bin/python3 bench/torch_bench.py imagefolder-pipeline --data "$2" --loader-threads 1 \
      --size 224 --images "$3" --repeat 3 --warmup 1 --json | tail -n 1 >> "$tmp/$1.torch"
  done
}
pipeline pipe "$PIPE_DATA" 2000
pipeline photo "$PHOTO_DATA" 400

for prec in 32 bf16-mixed 16-mixed 16-O2; do row "train-step cnn B64 $prec" "cnn_$prec" "samples/s"; done
row "resnet50-step B8 224 f32" resnet "img/s"
[ -f "$tmp/pipe.pacer" ] && row "imagefolder-pipeline 224, 1 core (Fashion-MNIST JPEGs)" pipe "img/s"
[ -f "$tmp/photo.pacer" ] && row "imagefolder-pipeline 224, 1 core (500x375 JPEGs, bench/make_photo_jpegs.py)" photo "img/s"
exit 0
