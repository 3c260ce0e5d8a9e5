#pragma once
/// safetensors files (huggingface's format, the checkpoint format of DESIGN §7): an
/// 8-byte little-endian header length N, N bytes of JSON header, then the raw data buffer.
/// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
/// (offsets relative to the data buffer) and may hold "__metadata__": {string: string}.
/// PyTorch's safetensors.torch.save_file / load_file read and write the same files.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace pacer::nn {

/// One tensor as the header describes it.
struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  int64_t begin = 0;  ///< first byte, relative to the start of the data buffer
  int64_t end = 0;    ///< one past the last byte
};

/// The format's name for a dtype ("F32", "BF16", "BOOL", ...).
const char* safetensors_dtype_name(DType dtype);

/// Writes `tensors` (CPU tensors of any of the 8 dtypes; views are written in logical
/// order) and string `metadata` to `path`, atomically: the bytes go to
/// `path + ".tmp.<pid>"`, which is fsynced and renamed over `path`, then the directory is
/// fsynced. On failure the temp file is removed, an existing file at `path` is left as it
/// was, and pacer::Error names the path and the reason.
/// Data are laid out by decreasing element size (stable otherwise), so that every tensor
/// starts at a multiple of its element size; the data buffer starts at a multiple of 8.
/// Duplicate or undefined tensors, and a tensor named "__metadata__", are errors.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Reads every tensor of `path` (sorted by data offset) and, when `metadata` is given,
/// the "__metadata__" map. The file is validated as inspect_safetensors does, and BOOL
/// data must hold only 0 and 1. Throws pacer::Error naming the file and the problem.
std::vector<std::pair<std::string, Tensor>> load_safetensors(const std::string& path,
                                                             std::map<std::string, std::string>* metadata = nullptr);

/// Reads and validates the header of `path` without reading tensor data: the header
/// length and JSON, each entry's dtype / shape / offsets, sizes matching shapes, and
/// ranges that cover the data buffer exactly once (no overlap, no gap, nothing past its
/// end). Entries come sorted by data offset. Throws pacer::Error on a malformed file.
std::vector<SafetensorsEntry> inspect_safetensors(const std::string& path,
                                                  std::map<std::string, std::string>* metadata = nullptr);

}  // namespace pacer::nn
