#pragma once
/// TensorBoard event files, written without TensorFlow or protobuf.
///
/// A file `events.out.tfevents.<unix seconds>.<hostname>` is a sequence of TFRecords:
///   uint64 length (little endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
/// where data is a serialized `tensorflow.Event`:
///   wall_time double = 1, step int64 = 2, file_version string = 3 ("brain.Event:2", first
///   record only), summary Summary = 5;  Summary { repeated Value value = 1 };
///   Value { tag string = 1, simple_value float = 2 }.
/// TensorBoard reads every file in a run directory whose name contains "tfevents", in name
/// order, so a resumed run simply adds a file.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace pacer::models {

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses it;
/// crc32c("123456789") == 0xE3069283. `crc` continues an earlier value.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

/// TFRecord's masking of a CRC stored next to the data it covers:
/// ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t size);

/// Writes scalar summaries to a new event file in a run directory. Each add_scalar() is one
/// complete record handed to the kernel in one write() (append-only: a crash leaves at most
/// a truncated last record, which TensorBoard skips). Thread-safe. The file is closed by the
/// destructor.
class TensorBoardWriter {
 public:
  /// Creates `log_dir` (and its parents) if needed and a new event file in it (never an
  /// existing one: a ".N" suffix is added when two writers start in the same second), and
  /// writes the file_version record. Throws pacer::Error naming the path and reason.
  explicit TensorBoardWriter(const std::string& log_dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  /// One point of the curve `tag` (e.g. "train/loss") at `step`; stored as float, as
  /// TensorBoard's simple_value is. Throws pacer::Error when the write fails.
  void add_scalar(std::string_view tag, double value, int64_t step);

  /// The event file's path.
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event);

  std::string path_;
  int fd_ = -1;
  std::mutex mutex_;
};

}  // namespace pacer::models
