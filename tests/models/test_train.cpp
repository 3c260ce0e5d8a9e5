// The first trainings on real data, CI-sized: the MLP and the CNN on Fashion-MNIST subsets
// must learn (far above the 10% of chance), and a run must be reproducible.
#include <doctest/doctest.h>

#include "models/classifier_training.h"
#include "models/cnn.h"

namespace pacer {

TEST_CASE("MLP on a Fashion-MNIST subset reaches 80% test accuracy") {
  models::TrainConfig c;
  c.epochs = 3;
  c.train_limit = 10000;
  c.test_limit = 2000;
  models::TrainResult r = models::train_classifier(c);
  MESSAGE("accuracy " << r.eval_accuracy << " in " << r.wall_s << " s");
  CHECK(r.eval_accuracy >= 0.80);
  CHECK(r.final_loss < 0.7);
}

TEST_CASE("CNN (conv, batch norm, pooling) on a Fashion-MNIST subset reaches 80% test accuracy") {
  models::TrainConfig c;
  c.model = "cnn";
  c.epochs = 1;
  c.train_limit = 12000;
  c.test_limit = 2000;
  models::TrainResult r = models::train_classifier(c);
  MESSAGE("accuracy " << r.eval_accuracy << " in " << r.wall_s << " s");
  CHECK(r.eval_accuracy >= 0.80);
}

TEST_CASE("CNN parameter and buffer names follow PyTorch's state_dict") {
  models::Cnn cnn;
  std::vector<std::string> names;
  for (auto& [n, t] : cnn.state_dict()) names.push_back(n);
  const std::vector<std::string> want = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                         "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                                         "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var",
                                         "fc.weight", "fc.bias"};
  CHECK(names == want);
}

TEST_CASE("MLP training is reproducible for a seed") {
  models::TrainConfig c;
  c.epochs = 1;
  c.train_limit = 1000;
  c.test_limit = 500;
  c.seed = 3;
  auto a = models::train_classifier(c), b = models::train_classifier(c);
  CHECK(a.final_loss == b.final_loss);  // bitwise: same init, same batches, deterministic kernels
  CHECK(a.eval_accuracy == b.eval_accuracy);
  c.seed = 4;
  CHECK(models::train_classifier(c).final_loss != a.final_loss);
}

}  // namespace pacer
