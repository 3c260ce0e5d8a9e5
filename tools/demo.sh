#!/usr/bin/env bash
# The demo on a fresh Debian machine: installs what is missing, builds, writes Debian's
# Fashion-MNIST as a JPEG ImageFolder tree (once, into build/fashion-mnist-jpeg), and trains
# ResNet-50 v1.5 on it at 32x32 through the ImageNet pipeline: on the GPU when one is
# visible, else on the CPU. Extra arguments go to `pacer train resnet50`; the last one of a
# flag wins, so `tools/demo.sh --epochs 5` is the 5-epoch run that reaches >= 90% (about an
# hour on 2 CPU cores; see README).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
source tools/cuda_cmake_args.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda_args[@]}" > build.configure.log 2>&1 ||
  { cat build.configure.log; exit 1; }
cmake --build build -j "$(nproc)" --target pacer_cli
data=build/fashion-mnist-jpeg
if [ ! -f "$data/complete" ]; then
  rm -rf "$data"
  build/pacer prepare fashion-mnist --out "$data" --quiet
  touch "$data/complete"
fi
device=cpu
if [ ${#cuda_args[@]} -gt 0 ] && nvidia-smi -L > /dev/null 2>&1; then device=cuda; fi
# A fresh run each time (pacer refuses to start a new run in a folder holding one), unless
# the arguments resume the last one.
case " $* " in *" --resume "* | *" --resume="*) ;; *) rm -rf build/demo-run ;; esac
exec build/pacer train resnet50 --data "$data" --device "$device" --image-size 32 --batch 64 \
  --crop-min-scale 1 --eval-resize 32 --warmup-epochs 0.5 --epochs 1 --out build/demo-run "$@"
