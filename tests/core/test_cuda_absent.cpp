// Without a GPU (this machine, CI), everything CPU works and every request for a CUDA
// device is refused with a message that names the device and the reason.
#include <doctest/doctest.h>

#include "core/cuda/caching_allocator.h"
#include "core/cuda/runtime.h"
#include "ops/api.h"

namespace pacer {

namespace {
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("cuda absent: CUDA tensors are refused clearly, CPU work goes on") {
  if (cuda::is_available()) {
    MESSAGE("a CUDA device is visible: the GPU suite (label gpu) covers this machine");
    return;
  }
  CHECK(cuda::device_count() == 0);
  const std::string why = cuda::is_built() ? "no CUDA device is visible" : "built without its CUDA backend";
  const Device gpu("cuda:0");
  for (const std::string& msg : {message_of([&] { empty({2}, {.device = gpu}); }),
                                 message_of([&] { ones({2}).to(gpu); }),
                                 message_of([&] { zeros({2}, {.device = Device("cuda:1")}); }),
                                 message_of([] { cuda::memory_stats(0); })}) {
    INFO(msg);
    CHECK(msg.find("cuda:") != std::string::npos);
    CHECK(msg.find(why) != std::string::npos);
  }
  CHECK(sum(ones({3})).item<float>() == 3.0f);  // the CPU is unaffected
}

}  // namespace pacer
