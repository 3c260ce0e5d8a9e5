#include "models/tensorboard.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace pacer::models {
namespace {

// The byte-at-a-time table for the reflected Castagnoli polynomial. Event files are small
// (a few records a step), so slicing-by-8 or SSE4.2's crc32 instruction would buy nothing.
constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// Minimal protobuf wire encoding: only what Event needs. Bytes are written one by one so
// the result does not depend on the host's byte order.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_fixed(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_tag(std::string& out, uint32_t field, WireType type) { put_varint(out, (field << 3) | type); }

void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_tag(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

// Event fields 1 (wall_time) and 2 (step), common to every record.
std::string event_header(int64_t step) {
  double wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  uint64_t wall_bits;
  std::memcpy(&wall_bits, &wall, sizeof wall);
  std::string e;
  put_tag(e, 1, kFixed64);
  put_fixed(e, wall_bits, 8);
  put_tag(e, 2, kVarint);
  put_varint(e, static_cast<uint64_t>(step));  // int64: negative steps take 10 bytes, as protobuf does
  return e;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  // A '/' would make the name a path.
  for (char* p = buf; *p; ++p)
    if (*p == '/') *p = '_';
  return buf;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = kCrc32cTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  // Masked because a CRC computed over data that itself holds CRCs is weak (TFRecord's note).
  uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& log_dir) {
  std::error_code ec;
  std::filesystem::create_directories(log_dir, ec);
  PACER_CHECK(!ec, "TensorBoardWriter: cannot create the directory '{}': {}", log_dir, ec.message());
  int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string base =
      (std::filesystem::path(log_dir) / ("events.out.tfevents." + std::to_string(now) + "." + host_name())).string();
  // O_EXCL: two writers started in the same second must never append to one file.
  for (int attempt = 0; attempt < 1000 && fd_ < 0; ++attempt) {
    path_ = attempt == 0 ? base : base + "." + std::to_string(attempt);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0 && errno != EEXIST) break;
  }
  PACER_CHECK(fd_ >= 0, "TensorBoardWriter: cannot create the event file '{}': {}", path_, std::strerror(errno));
  std::string e = event_header(0);
  put_bytes(e, 3, "brain.Event:2");
  write_event(e);
}

TensorBoardWriter::~TensorBoardWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void TensorBoardWriter::add_scalar(std::string_view tag, double value, int64_t step) {
  // Held while the wall time is taken too, so records from several threads stay in time order.
  std::lock_guard<std::mutex> lock(mutex_);
  float f = static_cast<float>(value);
  uint32_t f_bits;
  std::memcpy(&f_bits, &f, sizeof f);
  std::string v;
  put_bytes(v, 1, tag);
  put_tag(v, 2, kFixed32);
  put_fixed(v, f_bits, 4);
  std::string summary;
  put_bytes(summary, 1, v);
  std::string e = event_header(step);
  put_bytes(e, 5, summary);
  write_event(e);
}

// Called with mutex_ held (or from the constructor).
void TensorBoardWriter::write_event(const std::string& event) {
  std::string record;
  record.reserve(event.size() + 16);
  put_fixed(record, event.size(), 8);
  uint32_t length_crc = masked_crc32c(record.data(), 8);
  put_fixed(record, length_crc, 4);
  record += event;
  put_fixed(record, masked_crc32c(event.data(), event.size()), 4);
  size_t done = 0;
  while (done < record.size()) {
    ssize_t n = ::write(fd_, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    PACER_CHECK(n > 0, "TensorBoardWriter: writing to '{}' failed: {}", path_,
                n < 0 ? std::strerror(errno) : "no progress");
    done += static_cast<size_t>(n);
  }
}

}  // namespace pacer::models
