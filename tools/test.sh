#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs what is missing, builds
# (Release, warnings as errors, ccache) and runs every CTest test, then the graph and model
# suites once more through the executor's emulated CUDA-graph path.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
jobs=$(nproc)
# The CUDA backend is compiled (not run: CI has no GPU) wherever the toolkit is installed.
source tools/cuda_cmake_args.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPACER_WERROR=ON "${cuda_args[@]}" > build.configure.log 2>&1 ||
  { cat build.configure.log; exit 1; }
grep "Pacer: CUDA backend" build.configure.log || true
cmake --build build -j "$jobs"
ctest --test-dir build -j "$jobs" --output-on-failure
# The graph executor's CUDA-graph bookkeeping, on the CPU: the graph and model suites again with
# every executor taking the CUDA-graph path, its "launches" rerunning the nodes
# (ExecutorOptions::emulate_cuda_graph).
PACER_EMULATE_CUDA_GRAPH=1 ctest --test-dir build -j "$jobs" --output-on-failure -R "test_graph:|test_models:|test_optim:"
# Winograd F(4x4, 3x3) for every 3x3 stride-1 convolution it can take (most test shapes have
# too few channels for the default choice): the op table's gradchecks, graph and model suites again.
PACER_CONV_WINOGRAD=2 ctest --test-dir build -j "$jobs" --output-on-failure -R "test_graph:|test_models:|test_ops:"
