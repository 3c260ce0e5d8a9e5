#pragma once
/// cuBLAS, cuBLASLt and cuDNN handles, one per (device, thread), bound to the current stream
/// at each call (internal: for the CUDA kernels of ops). Returned as opaque pointers so this
/// header needs no library headers: cast to cublasHandle_t / cublasLtHandle_t / cudnnHandle_t.

#include <cstddef>

namespace pacer::cuda {

/// cublasHandle_t of the current device, with the current stream set and TF32 math
/// following allow_tf32().
void* cublas_handle();
/// cublasLtHandle_t of the current device.
void* cublaslt_handle();
/// cudnnHandle_t of the current device, with the current stream set.
void* cudnn_handle();

/// Whether f32 GEMMs and convolutions may use TF32 Tensor Cores (default true, as NVIDIA's
/// MLPerf code ran; PACER_ALLOW_TF32=0 or set_allow_tf32(false) turns it off).
bool allow_tf32();
void set_allow_tf32(bool allow);

/// A scratch buffer of at least `nbytes` on the current device, valid until the next call
/// on this thread (the cuBLASLt / cuDNN workspace). Allocated from the caching allocator.
void* workspace(size_t nbytes);

}  // namespace pacer::cuda
