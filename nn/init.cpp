#include "nn/init.h"

#include "autograd/grad_mode.h"
#include "ops/api.h"

namespace pacer::nn::init {

Tensor uniform(const Shape& sizes, double lo, double hi, Options o, Generator* gen) {
  NoGradGuard no_grad;
  Tensor t = cast(rand(sizes, {.dtype = DType::F32, .device = o.device}, gen) * (hi - lo) + lo, o.dtype);
  return contiguous(t);
}

}  // namespace pacer::nn::init
