#pragma once
/// Portable annotations shared by host and device code.

#if defined(__CUDACC__)
#define PACER_HOST_DEVICE __host__ __device__
#else
#define PACER_HOST_DEVICE
#endif

#define PACER_LIKELY(x) __builtin_expect(!!(x), 1)
#define PACER_UNLIKELY(x) __builtin_expect(!!(x), 0)
