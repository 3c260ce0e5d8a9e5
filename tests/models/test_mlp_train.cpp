// The first training on real data, CI-sized: the MLP on a Fashion-MNIST subset must learn
// (accuracy far above the 10% of chance) and the run must be reproducible.
#include <doctest/doctest.h>

#include "models/mlp_training.h"

namespace pacer {

TEST_CASE("MLP on a Fashion-MNIST subset reaches 80% test accuracy") {
  models::MlpTrainConfig c;
  c.epochs = 3;
  c.train_limit = 10000;
  c.test_limit = 2000;
  models::MlpTrainResult r = models::train_mlp(c);
  MESSAGE("accuracy " << r.eval_accuracy << " in " << r.wall_s << " s");
  CHECK(r.eval_accuracy >= 0.80);
  CHECK(r.final_loss < 0.7);
}

TEST_CASE("MLP training is reproducible for a seed") {
  models::MlpTrainConfig c;
  c.epochs = 1;
  c.train_limit = 1000;
  c.test_limit = 500;
  c.seed = 3;
  auto a = models::train_mlp(c), b = models::train_mlp(c);
  CHECK(a.final_loss == b.final_loss);  // bitwise: same init, same batches, deterministic kernels
  CHECK(a.eval_accuracy == b.eval_accuracy);
  c.seed = 4;
  CHECK(models::train_mlp(c).final_loss != a.final_loss);
}

}  // namespace pacer
