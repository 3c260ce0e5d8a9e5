#!/usr/bin/env bash
# Compiles one CUDA (.cu) or CUDA-host (.cpp) file of Pacer alone, with the build's flags,
# for one architecture (sm_90): a quick syntax and warning check while writing kernels
# on a machine without a GPU. Serialized through a lock so parallel checks do not swamp
# a small machine. Usage: tools/nvcc_check.sh ops/cuda/foo.cu [more files]
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_INC=/usr/local/cuda/include
for f in "$@"; do
  case "$f" in
    *.cu) cmd=(nvcc -std=c++20 -DFMT_USE_CONSTEXPR=1 --expt-relaxed-constexpr --extended-lambda
               -Xcompiler=-Wall,-Wextra,-Wno-restrict -Werror=all-warnings -arch=sm_90 -O2
               -I. -I/usr/include/x86_64-linux-gnu/openblas-pthread -c "$f" -o /dev/null) ;;
    *.cpp) cmd=(g++ -std=c++20 -Wall -Wextra -Wno-restrict -Werror -O2 -I. -I"$CUDA_INC" -fsyntax-only "$f") ;;
    *) echo "nvcc_check: $f is neither .cu nor .cpp" >&2; exit 2 ;;
  esac
  echo "nvcc_check: $f"
  flock /tmp/pacer_build.lock "${cmd[@]}"
done
