#include "nn/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "autograd/grad_mode.h"
#include "ops/api.h"

namespace pacer::nn {

namespace {

// The data buffer is stored byte for byte; a big-endian host would need swaps on both paths.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

using Json = nlohmann::json;

// safetensors' own reader refuses headers above 100 MB; a larger length is a corrupt file,
// and trusting it would make us allocate whatever the first 8 bytes say.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

struct DTypeCode {
  DType dtype;
  const char* name;
};
constexpr DTypeCode kCodes[] = {{DType::F32, "F32"},   {DType::F16, "F16"}, {DType::BF16, "BF16"},
                                {DType::F64, "F64"},   {DType::I64, "I64"}, {DType::I32, "I32"},
                                {DType::U8, "U8"},     {DType::Bool, "BOOL"}};

std::string errno_text() { return std::strerror(errno); }

// Owns a file descriptor; close() is explicit on the write path because it can report a
// delayed write error that the destructor would have to swallow.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int close() {
    const int r = ::close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  int fd_;
};

// Removes the temp file unless the rename succeeded, so that no failure leaves it behind.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!committed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  void commit() { committed_ = true; }

 private:
  std::string path_;
  bool committed_ = false;
};

[[noreturn]] void bad_file(const std::string& path, const std::string& problem) {
  PACER_FAIL("safetensors file '{}': {}", path, problem);
}

// Reads exactly n bytes at `offset`; a short read means the file shrank under us.
void read_at(int fd, const std::string& path, void* dst, uint64_t n, uint64_t offset) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, off_t(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) bad_file(path, "read failed: " + errno_text());
    if (r == 0) bad_file(path, "unexpected end of file");
    p += r, n -= uint64_t(r), offset += uint64_t(r);
  }
}

// A JSON integer in [0, 2^63); nlohmann stores non-negative literals as unsigned.
bool non_negative_int(const Json& j, int64_t& out) {
  if (j.is_number_unsigned()) {
    const auto u = j.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) return false;
    out = int64_t(u);
    return true;
  }
  if (j.is_number_integer()) {
    out = j.get<int64_t>();
    return out >= 0;
  }
  return false;
}

struct Header {
  std::vector<SafetensorsEntry> entries;  // sorted by data offset
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;                // file offset of the data buffer
};

[[noreturn]] void bad_entry(const std::string& path, const std::string& name, const std::string& problem) {
  bad_file(path, fmt::format("entry '{}' {}", name, problem));
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const Json& v, uint64_t data_size) {
  auto bad = [&](const std::string& problem) { bad_entry(path, name, problem); };
  if (!v.is_object()) bad("is not a JSON object");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!v.contains(field)) bad(fmt::format("has no \"{}\" field", field));
  SafetensorsEntry e;
  e.name = name;
  const Json& dt = v["dtype"];
  const DTypeCode* code = nullptr;
  if (dt.is_string())
    for (const DTypeCode& c : kCodes)
      if (dt.get_ref<const std::string&>() == c.name) code = &c;
  if (!code)
    bad_entry(path, name,
              fmt::format("has unknown dtype {} (Pacer reads F32, F16, BF16, F64, I64, I32, U8, BOOL)", dt.dump()));
  e.dtype = code->dtype;

  const Json& shape = v["shape"];
  int64_t numel = 1;
  bool shape_ok = shape.is_array();
  for (size_t i = 0; shape_ok && i < shape.size(); ++i) {
    int64_t d = 0;
    shape_ok = non_negative_int(shape[i], d) && !__builtin_mul_overflow(numel, d, &numel);
    e.shape.push_back(d);
  }
  if (!shape_ok) bad(fmt::format("has an invalid shape {}: expected a list of non-negative integers", shape.dump()));

  const Json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !non_negative_int(off[0], e.begin) || !non_negative_int(off[1], e.end) ||
      e.begin > e.end)
    bad(fmt::format("has invalid data_offsets {}: expected two non-negative integers [begin, end] with begin <= end",
                    off.dump()));
  if (uint64_t(e.end) > data_size)
    bad(fmt::format("ends at byte {}, beyond the {}-byte data buffer", e.end, data_size));
  int64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, int64_t(element_size(e.dtype)), &nbytes))
    bad(fmt::format("has shape {}, too large for any file", e.shape));
  if (nbytes != e.end - e.begin)
    bad(fmt::format("holds {} bytes but shape {} of {} needs {}", e.end - e.begin, e.shape, code->name, nbytes));
  return e;
}

Header read_header(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) bad_file(path, "cannot stat: " + errno_text());
  if (!S_ISREG(st.st_mode)) bad_file(path, "not a regular file");
  const auto file_size = uint64_t(st.st_size);
  if (file_size < 8) bad_file(path, fmt::format("file is {} bytes, shorter than the 8-byte header length", file_size));

  unsigned char len_bytes[8];
  read_at(fd, path, len_bytes, 8, 0);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > kMaxHeaderBytes) bad_file(path, fmt::format("header length {} exceeds the 100 MB limit", n));
  if (n > file_size - 8)
    bad_file(path, fmt::format("header length {} is larger than the file ({} bytes after the length)", n,
                               file_size - 8));
  std::string text(n, '\0');
  read_at(fd, path, text.data(), n, 8);

  // nlohmann keeps the last of repeated keys; a second tensor under the same name would
  // silently hide the first, so the callback records duplicates at the top level.
  std::string duplicate;
  std::set<std::string> seen;
  auto on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  Json h;
  try {
    h = Json::parse(text, on_event);
  } catch (const Json::exception& e) {
    bad_file(path, fmt::format("header is not valid JSON: {}", e.what()));
  }
  if (!h.is_object()) bad_file(path, fmt::format("header is not a JSON object (got a JSON {})", h.type_name()));
  if (!duplicate.empty()) bad_file(path, fmt::format("name '{}' appears twice in the header", duplicate));

  Header out;
  out.data_start = 8 + n;
  const uint64_t data_size = file_size - out.data_start;
  for (const auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) bad_file(path, "__metadata__ is not a JSON object");
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string()) bad_file(path, fmt::format("__metadata__ value of '{}' is not a string: {}", k, s.dump()));
        out.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    out.entries.push_back(parse_entry(path, name, v, data_size));
  }

  // The spec asks the ranges to tile the buffer: walking them in offset order, each must
  // start exactly where the previous one ended, and the last must end at the buffer's end.
  auto& es = out.entries;
  std::sort(es.begin(), es.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  int64_t pos = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const SafetensorsEntry& e : es) {
    if (e.begin < pos)
      bad_file(path, fmt::format("entries '{}' [{}, {}) and '{}' [{}, {}) overlap", prev->name, prev->begin, prev->end,
                                 e.name, e.begin, e.end));
    if (e.begin > pos)
      bad_file(path, fmt::format("bytes [{}, {}) of the data buffer belong to no tensor", pos, e.begin));
    pos = e.end;
    prev = &e;
  }
  if (uint64_t(pos) < data_size)
    bad_file(path, fmt::format("bytes [{}, {}) of the data buffer belong to no tensor", pos, data_size));
  return out;
}

Fd open_for_reading(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) bad_file(path, "cannot open: " + errno_text());
  return fd;
}

void write_all(int fd, const void* src, size_t n, const std::string& path, const std::string& tmp) {
  const auto* p = static_cast<const char*>(src);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) PACER_FAIL("save_safetensors: cannot write '{}': writing '{}' failed: {}", path, tmp, errno_text());
    p += w, n -= size_t(w);
  }
}

// Makes the rename durable: without it a crash can forget the new directory entry.
void fsync_directory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0)
    PACER_FAIL("save_safetensors: wrote '{}' but cannot open its directory '{}' to sync it: {}", path, dir,
               errno_text());
  // Some file systems cannot sync a directory (EINVAL); the data itself is already synced.
  if (::fsync(fd.get()) != 0 && errno != EINVAL && errno != ENOTSUP)
    PACER_FAIL("save_safetensors: wrote '{}' but syncing its directory '{}' failed: {}", path, dir, errno_text());
}

}  // namespace

const char* safetensors_dtype_name(DType dtype) {
  for (const DTypeCode& c : kCodes)
    if (c.dtype == dtype) return c.name;
  PACER_FAIL("safetensors: no code for dtype {}", int(dtype));
}

std::vector<SafetensorsEntry> inspect_safetensors(const std::string& path,
                                                  std::map<std::string, std::string>* metadata) {
  Fd fd = open_for_reading(path);
  Header h = read_header(fd.get(), path);
  if (metadata) *metadata = std::move(h.metadata);
  return std::move(h.entries);
}

std::vector<std::pair<std::string, Tensor>> load_safetensors(const std::string& path,
                                                             std::map<std::string, std::string>* metadata) {
  Fd fd = open_for_reading(path);
  Header h = read_header(fd.get(), path);
  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(h.entries.size());
  for (const SafetensorsEntry& e : h.entries) {
    Tensor t = empty(e.shape, {.dtype = e.dtype});
    const uint64_t nbytes = uint64_t(e.end - e.begin);
    if (nbytes > 0) read_at(fd.get(), path, t.data(), nbytes, h.data_start + uint64_t(e.begin));
    if (e.dtype == DType::Bool) {
      // Any byte but 0 or 1 in a C++ bool is undefined behaviour, so refuse it here.
      const auto* b = static_cast<const unsigned char*>(t.data());
      for (uint64_t i = 0; i < nbytes; ++i)
        if (b[i] > 1)
          bad_file(path, fmt::format("entry '{}' is BOOL but holds the byte {} at element {}", e.name, int(b[i]), i));
    }
    out.emplace_back(e.name, std::move(t));
  }
  if (metadata) *metadata = std::move(h.metadata);
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Every check that can fail runs before the temp file exists.
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    PACER_CHECK(name != "__metadata__", "save_safetensors '{}': '__metadata__' is reserved and cannot name a tensor",
                path);
    PACER_CHECK(names.insert(name).second, "save_safetensors '{}': tensor name '{}' appears twice", path, name);
    PACER_CHECK(t.defined(), "save_safetensors '{}': tensor '{}' is undefined", path, name);
    PACER_CHECK(t.is_cpu(), "save_safetensors '{}': tensor '{}' is on {}; move it to the CPU first", path, name,
                t.device());
  }
  // Largest elements first keeps every tensor aligned to its element size in the file.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return tensors[a].second.element_size() > tensors[b].second.element_size();
  });

  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (size_t i : order) {
    const auto& [name, t] = tensors[i];
    const auto nbytes = int64_t(t.nbytes());
    header[name] = {{"dtype", safetensors_dtype_name(t.dtype())},
                    {"shape", std::vector<int64_t>(t.sizes().begin(), t.sizes().end())},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception& e) {
    PACER_FAIL("save_safetensors '{}': tensor names and metadata must be valid UTF-8 ({})", path, e.what());
  }
  // Spaces are valid JSON padding; they put the data buffer at a multiple of 8.
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
  if (fd.get() < 0) PACER_FAIL("save_safetensors: cannot write '{}': cannot create '{}': {}", path, tmp, errno_text());
  TempFile guard(tmp);
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = (unsigned char)(uint64_t(text.size()) >> (8 * i));
  write_all(fd.get(), len_bytes, 8, path, tmp);
  write_all(fd.get(), text.data(), text.size(), path, tmp);
  {
    NoGradGuard no_grad;
    for (size_t i : order) {
      // contiguous() gathers a view into logical row-major order (a no-op when it already is).
      const Tensor c = contiguous(tensors[i].second);
      if (c.nbytes() > 0) write_all(fd.get(), c.data(), c.nbytes(), path, tmp);
    }
  }
  if (::fsync(fd.get()) != 0)
    PACER_FAIL("save_safetensors: cannot write '{}': syncing '{}' failed: {}", path, tmp, errno_text());
  if (fd.close() != 0)
    PACER_FAIL("save_safetensors: cannot write '{}': closing '{}' failed: {}", path, tmp, errno_text());
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    PACER_FAIL("save_safetensors: cannot write '{}': renaming '{}' over it failed: {}", path, tmp, errno_text());
  guard.commit();
  fsync_directory(path);
}

}  // namespace pacer::nn
