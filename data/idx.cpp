#include "data/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

namespace pacer::data {

namespace {

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

// Reads exactly n bytes; false on a short read.
bool read_exact(gzFile f, void* dst, size_t n) {
  char* p = static_cast<char*>(dst);
  while (n > 0) {
    const unsigned chunk = unsigned(std::min<size_t>(n, 1u << 30));
    const int got = gzread(f, p, chunk);
    if (got <= 0) return false;
    p += got;
    n -= size_t(got);
  }
  return true;
}

uint32_t big_endian_u32(const unsigned char* b) {
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

template <class T>
void swap_bytes_inplace(T* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    unsigned char* b = reinterpret_cast<unsigned char*>(p + i);
    for (size_t k = 0; k < sizeof(T) / 2; ++k) std::swap(b[k], b[sizeof(T) - 1 - k]);
  }
}

}  // namespace

Tensor read_idx(const std::string& path) {
  GzFile f(gzopen(path.c_str(), "rb"));
  PACER_CHECK(f != nullptr, "read_idx: cannot open '{}': {}", path, std::strerror(errno));
  unsigned char header[4];
  PACER_CHECK(read_exact(f.get(), header, 4), "read_idx: '{}' is truncated: expected a 4-byte IDX header", path);
  PACER_CHECK(header[0] == 0 && header[1] == 0,
              "read_idx: '{}' is not an IDX file: expected magic bytes 00 00, got {:02x} {:02x}", path, header[0],
              header[1]);
  const int type = header[2], ndims = header[3];
  PACER_CHECK(ndims >= 1 && ndims <= 8, "read_idx: '{}' declares {} dimensions, expected 1 to 8", path, ndims);
  DType file_type;
  size_t file_elem;
  switch (type) {
    case 0x08: file_type = DType::U8; file_elem = 1; break;
    case 0x09: file_type = DType::I32; file_elem = 1; break;  // i8, widened
    case 0x0B: file_type = DType::I32; file_elem = 2; break;  // i16, widened
    case 0x0C: file_type = DType::I32; file_elem = 4; break;
    case 0x0D: file_type = DType::F32; file_elem = 4; break;
    case 0x0E: file_type = DType::F64; file_elem = 8; break;
    default:
      PACER_FAIL("read_idx: '{}' has unknown element type 0x{:02x}, expected one of 08 09 0B 0C 0D 0E", path, type);
  }
  Shape sizes;
  int64_t numel = 1;
  for (int d = 0; d < ndims; ++d) {
    unsigned char b[4];
    PACER_CHECK(read_exact(f.get(), b, 4), "read_idx: '{}' is truncated inside its header (dimension {} of {})", path,
                d, ndims);
    const int64_t s = big_endian_u32(b);
    PACER_CHECK(s < (int64_t(1) << 31) && numel * std::max<int64_t>(s, 1) < (int64_t(1) << 36),
                "read_idx: '{}' declares an implausible size {} in dimension {}", path, s, d);
    sizes.push_back(s);
    numel *= s;
  }
  Tensor out = empty(sizes, {.dtype = file_type});
  std::vector<unsigned char> raw(size_t(numel) * file_elem);
  PACER_CHECK(read_exact(f.get(), raw.data(), raw.size()),
              "read_idx: '{}' is truncated: shape {} needs {} bytes of data, the file has fewer", path, sizes,
              raw.size());
  if (file_elem == 1 && file_type == DType::U8) {
    std::memcpy(out.data(), raw.data(), raw.size());
  } else if (type == 0x09) {
    int32_t* o = out.data_ptr<int32_t>();
    for (int64_t i = 0; i < numel; ++i) o[i] = int8_t(raw[size_t(i)]);
  } else if (type == 0x0B) {
    int32_t* o = out.data_ptr<int32_t>();
    for (int64_t i = 0; i < numel; ++i) o[i] = int16_t((raw[size_t(2 * i)] << 8) | raw[size_t(2 * i + 1)]);
  } else {
    std::memcpy(out.data(), raw.data(), raw.size());
    if (file_elem == 4) swap_bytes_inplace(static_cast<uint32_t*>(out.data()), numel);
    else swap_bytes_inplace(static_cast<uint64_t*>(out.data()), numel);
  }
  return out;
}

void write_idx(const std::string& path, const Tensor& t) {
  PACER_CHECK(t.is_cpu(), "write_idx: expected a CPU tensor, got one on {}", t.device());
  PACER_CHECK(t.dim() >= 1 && t.dim() <= 8, "write_idx: expected 1 to 8 dims, got shape {}", t.sizes());
  unsigned char type;
  switch (t.dtype()) {
    case DType::U8: type = 0x08; break;
    case DType::I32: type = 0x0C; break;
    case DType::F32: type = 0x0D; break;
    case DType::F64: type = 0x0E; break;
    default: PACER_FAIL("write_idx: IDX holds uint8, int32, float32 or float64, got {}", t.dtype());
  }
  std::ofstream out(path, std::ios::binary);
  PACER_CHECK(out.good(), "write_idx: cannot create '{}': {}", path, std::strerror(errno));
  const unsigned char head[4] = {0, 0, type, (unsigned char)t.dim()};
  out.write(reinterpret_cast<const char*>(head), 4);
  for (int64_t s : t.sizes()) {
    const unsigned char b[4] = {(unsigned char)(s >> 24), (unsigned char)(s >> 16), (unsigned char)(s >> 8),
                                (unsigned char)s};
    out.write(reinterpret_cast<const char*>(b), 4);
  }
  const size_t es = t.element_size();
  std::vector<unsigned char> raw(size_t(t.numel()) * es);
  // Gather in logical order (the tensor may be a view), then store big-endian.
  auto gather = [&]<class T>() {
    std::vector<T> v = t.to_vector<T>();
    std::memcpy(raw.data(), v.data(), raw.size());
  };
  if (t.dtype() == DType::U8) gather.operator()<uint8_t>();
  else if (t.dtype() == DType::I32) gather.operator()<int32_t>();
  else if (t.dtype() == DType::F32) gather.operator()<float>();
  else gather.operator()<double>();
  for (size_t i = 0; es > 1 && i < raw.size(); i += es) std::reverse(raw.begin() + long(i), raw.begin() + long(i + es));
  out.write(reinterpret_cast<const char*>(raw.data()), std::streamsize(raw.size()));
  PACER_CHECK(out.good(), "write_idx: writing '{}' failed", path);
}

}  // namespace pacer::data
