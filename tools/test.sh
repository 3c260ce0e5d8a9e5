#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs what is missing, builds
# (Release, warnings as errors, ccache) and runs every CTest test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPACER_WERROR=ON > build.configure.log 2>&1 ||
  { cat build.configure.log; exit 1; }
cmake --build build -j "$jobs"
ctest --test-dir build -j "$jobs" --output-on-failure
