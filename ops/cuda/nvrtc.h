#pragma once
/// Runtime compilation of generated CUDA source (the fused pointwise kernels) with NVRTC,
/// through an on-disk cache. NVRTC is loaded with dlopen on first use (libnvrtc.so.13, .12
/// or the unversioned name), so nothing links to it and a machine without it fails only
/// when a fused CUDA kernel is needed, with that reason.
///
/// Cache: $PACER_NVRTC_CACHE, else $XDG_CACHE_HOME/pacer/nvrtc, else ~/.cache/pacer/nvrtc;
/// one file per kernel, named by a hash of (source, GPU architecture, NVRTC version), written
/// to a temporary name and renamed, so a crash never leaves a half-written cubin under the
/// real name. A file that is not an ELF cubin is ignored and rewritten.

#include <string>

namespace pacer::ops::cuda {

struct NvrtcBinary {
  std::string cubin;       // the ELF image for cudaLibraryLoadData
  bool from_cache = false;
  std::string cache_path;  // empty when the cache directory is unusable
};

/// Compiles `source` for sm_<arch> (90 for H100), or takes it from the cache. Throws with
/// NVRTC's log when the source does not compile.
NvrtcBinary nvrtc_compile(const std::string& source, int arch);

/// The cache directory in use ("" when none can be made).
std::string nvrtc_cache_dir();

/// NVRTC's version as major * 1000 + minor * 10 (13000 for 13.0).
int nvrtc_version();

}  // namespace pacer::ops::cuda
