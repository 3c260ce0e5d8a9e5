#pragma once
/// A multi-threaded loader over an ImageFolder: worker threads read, decode (libjpeg-turbo
/// with DCT-domain downscaling) and augment samples straight into their row of a batch
/// buffer; completed [B, 3, H, W] f32 + [B] i64 batches wait in a bounded queue. Workers
/// share samples, not whole batches, so a batch is ready after B / threads decodes and
/// memory stays at a few batches whatever the thread count.
///
/// Deterministic: the order of epoch e is data::shuffled_indices(n, seed, e) (sharded by
/// rank), each sample's augmentation is keyed by (seed, e, sample index), and batches are
/// handed out in order, so the batches are identical whatever the thread count, and a run
/// started at batch k of epoch e sees exactly the tail of a full run.
///
/// Corrupt or truncated JPEGs are skipped (a warning line on stderr, counted by skipped()):
/// their batch is shorter by one (a batch of only bad files has zero rows; it still counts
/// as a batch, so positions stay aligned). With `strict`, a bad file is an error naming it,
/// raised by next() for its batch. With `pin_memory`, batches are staged in pinned host
/// memory, so `.to(cuda)` on them is an asynchronous copy that overlaps the previous step.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/image_folder.h"
#include "data/image_transforms.h"

namespace pacer::data {

struct ImageLoaderOptions {
  int64_t batch = 32;
  int64_t size = 224;          // output height = width
  bool train = true;           // true: random-resized crop + flip; false: resize + center crop
  int64_t eval_resize = 256;   // eval: the short side before the center crop (>= size)
  RandomResizedCropParams crop;
  uint64_t seed = 0;
  bool shuffle = true;         // false: folder order (evaluation)
  bool drop_last = false;      // drop the last, short batch of an epoch
  int rank = 0, world_size = 1;
  int threads = 0;             // worker threads; 0 = the number of cores
  int prefetch = 2;            // batches not yet returned by next() that workers may fill at once
  bool strict = false;         // a bad JPEG is an error instead of a skipped sample
  bool pin_memory = false;     // batches in pinned host memory (needs a CUDA device)
  /// Decode with DCT downscaling while the short side stays >= this; -1 = `size` for
  /// training, `eval_resize` for evaluation; 0 = always decode at full size.
  int64_t decode_min_side = -1;
};

struct ImageBatch {
  Tensor images;                 // [b, 3, size, size] f32, ImageNet-normalized
  Tensor labels;                 // [b] i64
  std::vector<int64_t> indices;  // the folder indices of the b samples
  int64_t epoch = 0, index = 0;  // which batch of which epoch
  int64_t skipped = 0;           // samples of this batch that failed to decode
};

class ImageLoader {
 public:
  ImageLoader(ImageFolder folder, ImageLoaderOptions options);
  ~ImageLoader();
  ImageLoader(const ImageLoader&) = delete;
  ImageLoader& operator=(const ImageLoader&) = delete;

  /// Samples this rank sees per epoch: ceil(n / world_size) (the order is padded by
  /// wrapping around so every rank has as many, as PyTorch's DistributedSampler does).
  int64_t samples_per_epoch() const;
  int64_t batches_per_epoch() const;
  /// The folder indices this rank sees in epoch `epoch`, in order.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  /// (Re)starts production at batch `first_batch` of `epoch`; a running epoch is abandoned.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  /// The next batch of the current epoch (waits for it); false once the epoch is done.
  /// Rethrows a worker's error (strict mode, or out of memory) for the batch it hit.
  bool next(ImageBatch& out);

  /// Samples skipped as corrupt since construction.
  int64_t skipped() const { return skipped_.load(); }
  const ImageFolder& folder() const { return folder_; }
  const ImageLoaderOptions& options() const { return opt_; }

 private:
  // A batch being filled: each sample writes its own row; the worker finishing the last
  // sample turns it into the ImageBatch.
  struct Pending {
    Tensor images;
    std::vector<char> ok;          // per sample: decoded
    int64_t remaining = 0;         // samples not finished yet
    std::exception_ptr error;      // the first failing sample's (strict) or an allocation failure
    int64_t error_sample = -1;
    bool ready = false;
    ImageBatch batch;
  };
  void stop_workers();
  void worker();
  int64_t batch_length(int64_t k) const;
  // Decodes sample j of batch k into dst (3 * size * size floats); false when skipped.
  bool load_sample(int64_t k, int64_t j, float* dst);
  void finish_batch(int64_t k, Pending& p);

  ImageFolder folder_;
  ImageLoaderOptions opt_;
  int threads_ = 1, depth_ = 2;
  int64_t decode_min_side_ = 0;

  std::mutex m_;
  std::condition_variable work_cv_, ready_cv_;
  bool started_ = false, stop_ = false;
  int64_t epoch_ = 0, next_deliver_ = 0, end_batch_ = 0;
  int64_t claim_batch_ = 0, claim_sample_ = 0;  // the next sample a worker takes
  std::vector<int64_t> order_;
  std::map<int64_t, Pending> pending_;  // node addresses stay valid while others are added
  std::vector<std::thread> workers_;
  std::atomic<int64_t> skipped_{0};
};

/// Benchmark for `pacer bench imagefolder-pipeline`: images per second a training loader
/// (random-resized crop to size x size, flip, normalize) delivers from the folder `root`
/// with `threads` workers and batches of `batch`, over `images` images (epochs repeat as
/// needed). The folder scan is not timed.
double pipeline_images_per_s(const std::string& root, int threads, int64_t batch, int64_t images, int64_t size);

}  // namespace pacer::data
