#include "data/image_loader.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "core/cuda/pinned.h"
#include "core/cuda/runtime.h"
#include "core/error.h"
#include "data/jpeg.h"
#include "data/sampler.h"

namespace pacer::data {

ImageLoader::ImageLoader(ImageFolder folder, ImageLoaderOptions options)
    : folder_(std::move(folder)), opt_(std::move(options)) {
  PACER_CHECK(folder_.size() > 0, "ImageLoader: the folder '{}' holds no images", folder_.root);
  PACER_CHECK(folder_.labels.size() == folder_.files.size(), "ImageLoader: expected one label per file, got {} and {}",
              folder_.labels.size(), folder_.files.size());
  PACER_CHECK(opt_.batch > 0, "ImageLoader: expected a positive batch size, got {}", opt_.batch);
  PACER_CHECK(opt_.size > 0, "ImageLoader: expected a positive image size, got {}", opt_.size);
  PACER_CHECK(opt_.train || opt_.eval_resize >= opt_.size,
              "ImageLoader: expected eval_resize >= size for the center crop, got {} and {}", opt_.eval_resize,
              opt_.size);
  PACER_CHECK(opt_.world_size >= 1 && opt_.rank >= 0 && opt_.rank < opt_.world_size,
              "ImageLoader: expected 0 <= rank < world_size, got rank {} and world_size {}", opt_.rank,
              opt_.world_size);
  PACER_CHECK(opt_.threads >= 0 && opt_.prefetch >= 1,
              "ImageLoader: expected threads >= 0 and prefetch >= 1, got {} and {}", opt_.threads, opt_.prefetch);
  PACER_CHECK(!opt_.pin_memory || cuda::is_available(),
              "ImageLoader: pin_memory expects a CUDA device, got {} (CUDA backend {})", cuda::device_count(),
              cuda::is_built() ? "built" : "not built");
  threads_ = opt_.threads > 0 ? opt_.threads : std::max(1, int(std::thread::hardware_concurrency()));
  depth_ = std::max(opt_.prefetch, 1);
  decode_min_side_ = opt_.decode_min_side >= 0 ? opt_.decode_min_side : (opt_.train ? opt_.size : opt_.eval_resize);
}

ImageLoader::~ImageLoader() { stop_workers(); }

int64_t ImageLoader::samples_per_epoch() const {
  return (folder_.size() + opt_.world_size - 1) / opt_.world_size;
}

int64_t ImageLoader::batches_per_epoch() const {
  const int64_t n = samples_per_epoch();
  return opt_.drop_last ? n / opt_.batch : (n + opt_.batch - 1) / opt_.batch;
}

std::vector<int64_t> ImageLoader::epoch_order(int64_t epoch) const {
  const int64_t n = folder_.size();
  std::vector<int64_t> all;
  if (opt_.shuffle) {
    all = shuffled_indices(n, opt_.seed, uint64_t(epoch));
  } else {
    all.resize(size_t(n));
    std::iota(all.begin(), all.end(), int64_t(0));
  }
  const int64_t per_rank = samples_per_epoch();
  std::vector<int64_t> mine(static_cast<size_t>(per_rank));
  for (int64_t j = 0; j < per_rank; ++j) mine[size_t(j)] = all[size_t((opt_.rank + j * opt_.world_size) % n)];
  return mine;
}

void ImageLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> g(m_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

void ImageLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  PACER_CHECK(epoch >= 0, "ImageLoader: expected epoch >= 0, got {}", epoch);
  PACER_CHECK(first_batch >= 0 && first_batch <= batches_per_epoch(),
              "ImageLoader: expected a start batch in [0, {}], got {}", batches_per_epoch(), first_batch);
  stop_workers();
  std::vector<int64_t> order = epoch_order(epoch);
  {
    std::lock_guard<std::mutex> g(m_);
    stop_ = false;
    started_ = true;
    epoch_ = epoch;
    order_ = std::move(order);
    next_deliver_ = claim_batch_ = first_batch;
    claim_sample_ = 0;
    end_batch_ = batches_per_epoch();
    pending_.clear();
  }
  if (first_batch < end_batch_) {
    for (int i = 0; i < threads_; ++i) workers_.emplace_back([this] { worker(); });
  }
}

int64_t ImageLoader::batch_length(int64_t k) const {
  return std::min<int64_t>(opt_.batch, int64_t(order_.size()) - k * opt_.batch);
}

void ImageLoader::worker() {
  const int64_t plane = 3 * opt_.size * opt_.size;
  std::unique_lock<std::mutex> lock(m_);
  for (;;) {
    // Bounded: samples are taken only from the `depth_` batches after the last one returned.
    work_cv_.wait(lock, [&] { return stop_ || claim_batch_ >= end_batch_ || claim_batch_ < next_deliver_ + depth_; });
    if (stop_ || claim_batch_ >= end_batch_) return;
    const int64_t k = claim_batch_, j = claim_sample_;
    const int64_t len = batch_length(k);
    if (++claim_sample_ == len) {
      ++claim_batch_;
      claim_sample_ = 0;
    }
    Pending& p = pending_[k];
    if (j == 0) {
      p.remaining = len;
      p.ok.assign(size_t(len), 0);
      try {
        const Shape shape{len, 3, opt_.size, opt_.size};
        p.images = opt_.pin_memory ? cuda::pinned_empty(shape, f32) : empty(shape);
      } catch (...) {
        p.error = std::current_exception();
        p.error_sample = -1;
      }
    }
    float* dst = p.images.defined() ? p.images.data_ptr<float>() + j * plane : nullptr;
    lock.unlock();
    bool ok = false;
    std::exception_ptr error;
    if (dst != nullptr) {
      try {
        ok = load_sample(k, j, dst);
      } catch (...) {
        error = std::current_exception();
      }
    }
    lock.lock();
    p.ok[size_t(j)] = ok ? 1 : 0;
    // The error of the lowest failing sample wins, so the message does not depend on timing.
    if (error && (!p.error || (p.error_sample >= 0 && j < p.error_sample))) {
      p.error = error;
      p.error_sample = j;
    }
    if (--p.remaining == 0) {
      finish_batch(k, p);
      ready_cv_.notify_all();
    }
  }
}

bool ImageLoader::load_sample(int64_t k, int64_t j, float* dst) {
  const int64_t idx = order_[size_t(k * opt_.batch + j)];
  const std::string& path = folder_.files[size_t(idx)];
  try {
    const Image img = read_jpeg(path, decode_min_side_);
    const Image view = opt_.train ? train_transform(img, opt_.size, SampleRng(opt_.seed, uint64_t(epoch_), uint64_t(idx)),
                                                    opt_.crop)
                                  : eval_transform(img, opt_.eval_resize, opt_.size);
    normalize_to_chw(view, dst);
    return true;
  } catch (const Error& e) {
    if (opt_.strict) throw Error(fmt::format("ImageLoader (strict): sample {}: {}", idx, e.what()));
    std::fprintf(stderr, "pacer: warning: skipping image %lld: %s\n", (long long)idx, e.what());
    skipped_.fetch_add(1);
    return false;
  }
}

// Called with the lock held by the worker that finished the batch's last sample.
void ImageLoader::finish_batch(int64_t k, Pending& p) {
  ImageBatch& b = p.batch;
  b.epoch = epoch_;
  b.index = k;
  if (!p.error) {
    const int64_t len = batch_length(k), s = opt_.size, plane = 3 * s * s;
    float* base = p.images.data_ptr<float>();
    std::vector<int64_t> labels;
    for (int64_t j = 0; j < len; ++j) {
      if (!p.ok[size_t(j)]) {
        ++b.skipped;
        continue;
      }
      const int64_t idx = order_[size_t(k * opt_.batch + j)];
      const int64_t row = int64_t(labels.size());
      // Kept samples move up over skipped ones (row <= j, so memmove never overwrites
      // a row still to be moved).
      if (row != j) std::memmove(base + row * plane, base + j * plane, size_t(plane) * sizeof(float));
      labels.push_back(folder_.labels[size_t(idx)]);
      b.indices.push_back(idx);
    }
    const int64_t rows = int64_t(labels.size());
    b.images = rows == len ? p.images : make_view(p.images, {rows, 3, s, s}, {plane, s * s, s, 1}, 0);
    b.labels = opt_.pin_memory ? cuda::pin_memory(from_vector(labels)) : from_vector(labels);
  }
  p.images = Tensor();
  p.ready = true;
}

bool ImageLoader::next(ImageBatch& out) {
  std::unique_lock<std::mutex> lock(m_);
  PACER_CHECK(started_, "ImageLoader: call start_epoch(epoch) before next()");
  if (next_deliver_ >= end_batch_) return false;
  ready_cv_.wait(lock, [&] {
    auto it = pending_.find(next_deliver_);
    return it != pending_.end() && it->second.ready;
  });
  auto it = pending_.find(next_deliver_);
  Pending p = std::move(it->second);
  pending_.erase(it);
  ++next_deliver_;
  lock.unlock();
  work_cv_.notify_all();
  if (p.error) std::rethrow_exception(p.error);
  out = std::move(p.batch);
  return true;
}

double pipeline_images_per_s(const std::string& root, int threads, int64_t batch, int64_t images, int64_t size) {
  PACER_CHECK(images > 0, "pipeline_images_per_s: expected images > 0, got {}", images);
  ImageLoaderOptions o;
  o.batch = batch;
  o.size = size;
  o.threads = threads;
  ImageLoader loader(scan_image_folder(root), o);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t done = 0, epoch = 0, in_epoch = 0;
  loader.start_epoch(0);
  ImageBatch b;
  while (done < images) {
    if (!loader.next(b)) {
      PACER_CHECK(in_epoch > 0, "pipeline_images_per_s: no image of '{}' could be decoded", root);
      loader.start_epoch(++epoch);
      in_epoch = 0;
      continue;
    }
    done += b.labels.numel();
    in_epoch += b.labels.numel();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return double(done) / s;
}

}  // namespace pacer::data
