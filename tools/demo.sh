#!/usr/bin/env bash
# Trains the Fashion-MNIST demo on a fresh Debian machine: installs what is missing,
# builds, and runs `pacer train mlp` (extra arguments are passed on, e.g. --epochs 3).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > build.configure.log 2>&1 ||
  { cat build.configure.log; exit 1; }
cmake --build build -j "$(nproc)" --target pacer_cli
exec build/pacer train mlp "$@"
