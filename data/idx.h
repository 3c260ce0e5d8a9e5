#pragma once
/// The IDX format (LeCun's MNIST files, also used by Fashion-MNIST): a big-endian
/// header {0, 0, type, ndims}, ndims big-endian u32 sizes, then the data. Files may be
/// gzip-compressed (read transparently).

#include <string>

#include "core/tensor.h"

namespace pacer::data {

/// Reads an IDX file into a CPU tensor of its element type (u8, i32, f32, f64; i8 and
/// i16 widen to i32). Throws pacer::Error naming the file and the problem for a missing,
/// truncated or corrupt file.
Tensor read_idx(const std::string& path);

/// Writes `t` (u8, i32, f32 or f64; CPU) as an uncompressed IDX file (for tests and tools).
void write_idx(const std::string& path, const Tensor& t);

}  // namespace pacer::data
