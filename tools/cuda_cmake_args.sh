# Sourced by test.sh and demo.sh: sets the array `cuda_args` to the CMake flags that build the
# CUDA backend wherever the toolkit is installed (also when nvcc is not on PATH), else ().
cuda_args=()
if command -v nvcc > /dev/null; then
  cuda_args=(-DPACER_CUDA=ON)
elif [ -x /usr/local/cuda/bin/nvcc ]; then
  cuda_args=(-DPACER_CUDA=ON -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi
