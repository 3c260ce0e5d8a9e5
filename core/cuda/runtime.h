#pragma once
/// The CUDA runtime entry points of core (DESIGN §2). This target is built only when the
/// CUDA toolkit is found; issue 4 grows it into streams, the caching allocator and handles.

namespace pacer::cuda {

/// Number of visible CUDA devices; 0 when there is no driver or no GPU (never throws).
int device_count();

}  // namespace pacer::cuda
