#!/usr/bin/env bash
# Installs the built tree into a scratch prefix, builds tests/install/consumer against it
# with find_package(Pacer), runs it and checks the gradient it prints (2 * w * x).
set -euo pipefail
build_dir=$1
src_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" > "$work/install.log"
cmake -S "$src_dir/consumer" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"
out=$("$work/build/consumer")
echo "$out"
grep -q "loss 14.5" <<< "$out"
grep -q "tensor(\[ *1\., -4\., 12\.\], dtype=float64)" <<< "$out"
