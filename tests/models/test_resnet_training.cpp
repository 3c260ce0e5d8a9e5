// The ResNet workload's loop on a tiny ImageFolder it writes itself: it learns an easy
// two-class problem, skips and counts a corrupt JPEG, writes an MLPerf log and TensorBoard
// events, and resuming from a mid-epoch checkpoint continues bitwise like an uninterrupted
// run. (tests/models/kill_resume_test.sh does the same through the CLI with a real SIGKILL.)
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include <cmath>

#include "data/jpeg.h"
#include "models/resnet_training.h"
#include "tests/test_util.h"

namespace pacer {

namespace {

namespace fs = std::filesystem;

// train/ and val/ with classes "dark" and "light": 16x16 images, noisy around 40 and 215.
std::string make_folder(bool with_corrupt) {
  const fs::path root = fs::temp_directory_path() / ("pacer_resnet_" + std::to_string(::getpid()));
  fs::remove_all(root);
  uint32_t state = 12345;
  auto noise = [&] {
    state = state * 1664525u + 1013904223u;
    return int(state >> 27) - 16;
  };
  for (const char* split : {"train", "val"})
    for (int cls = 0; cls < 2; ++cls) {
      const fs::path dir = root / split / (cls ? "light" : "dark");
      fs::create_directories(dir);
      for (int i = 0; i < 12; ++i) {
        data::Image img(16, 16, 3);
        for (auto& p : img.pixels) p = uint8_t(std::clamp((cls ? 215 : 40) + noise(), 0, 255));
        const std::vector<uint8_t> bytes = data::encode_jpeg(img, 90);
        std::ofstream(dir / (std::to_string(i) + ".jpg"), std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
      }
    }
  if (with_corrupt) std::ofstream(root / "train" / "dark" / "zz_corrupt.jpg") << "not a jpeg at all";
  return root.string();
}

models::ResnetTrainConfig tiny(const std::string& data) {
  models::ResnetTrainConfig c;
  c.data_dir = data;
  c.depth = 18;
  c.image_size = 16;
  c.batch = 4;
  c.epochs = 2;
  c.optimizer = "sgd";
  c.lr = 0.05;
  c.warmup_epochs = 0;
  c.loader_threads = 2;
  c.seed = 3;
  return c;
}

}  // namespace

TEST_CASE("resnet workload: learns a two-class folder, counts a corrupt JPEG, writes its run logs") {
  const std::string data = make_folder(true);
  models::ResnetTrainConfig c = tiny(data);
  c.epochs = 6;
  c.eval_every = 3;
  c.out_dir = data + "/run";
  models::ResnetResult r = models::train_resnet(c);
  CHECK(r.epochs == 6);
  CHECK(r.top1 >= 0.9);
  CHECK(r.skipped_images >= 1);
  std::ifstream log(c.out_dir + "/mlperf.log");
  std::string all((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  for (const char* key : {":::MLL", "run_start", "eval_accuracy", "run_stop", "\"status\": \"success\""})
    CHECK_MESSAGE(all.find(key) != std::string::npos, "mlperf.log lacks " << key);
  bool events = false;
  for (const auto& e : fs::directory_iterator(c.out_dir + "/tensorboard"))
    events = events || e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  CHECK(events);
  CHECK(fs::exists(c.out_dir + "/checkpoint.safetensors"));
  // A second fresh run into the same folder is refused before it touches anything.
  const auto written = fs::last_write_time(c.out_dir + "/checkpoint.safetensors");
  const std::string err = test::error_of([&] { models::train_resnet(c); });
  CHECK(err.find("already holds another run (checkpoint.safetensors exists); continue it with --resume") !=
        std::string::npos);
  CHECK(fs::last_write_time(c.out_dir + "/checkpoint.safetensors") == written);
  fs::remove_all(data);
}

TEST_CASE("resnet workload: resuming from a mid-epoch checkpoint continues bitwise") {
  const std::string data = make_folder(false);
  models::ResnetResult full = models::train_resnet(tiny(data));  // 6 steps per epoch, 12 in all
  REQUIRE(full.step_losses.size() == 12);
  // Graph mode (the default): steps after the first two are replays, and the resumed run's
  // first two are eager again: equal losses mean replays equal eager steps bit for bit.
  CHECK(full.graph);
  models::ResnetTrainConfig first = tiny(data);
  first.out_dir = data + "/run";
  first.checkpoint_every = 4;
  first.stop_after_steps = 5;  // the last checkpoint is after step 4 of epoch 0
  models::ResnetResult a = models::train_resnet(first);
  CHECK(a.stopped_early);
  models::ResnetTrainConfig second = tiny(data);
  second.resume = data + "/run/checkpoint.safetensors";
  models::ResnetResult b = models::train_resnet(second);
  REQUIRE(b.step_losses.size() == 8);
  for (size_t i = 0; i < 8; ++i) CHECK(b.step_losses[i] == full.step_losses[4 + i]);
  CHECK(b.top1 == full.top1);

  // --graph off: the same recipe eagerly gives the same numbers bit for bit.
  models::ResnetTrainConfig eager = tiny(data);
  eager.graph = false;
  models::ResnetResult e = models::train_resnet(eager);
  CHECK_FALSE(e.graph);
  REQUIRE(e.step_losses.size() == 12);
  for (size_t i = 0; i < 12; ++i) CHECK(e.step_losses[i] == full.step_losses[i]);
  CHECK(e.top1 == full.top1);

  // 16-mixed and 16-O2 (dynamic loss scaling: the first steps overflow and are skipped;
  // O2 also keeps f32 master weights): graph mode and eager give the same losses bit for bit.
  for (const char* precision : {"16-mixed", "16-O2"}) {
    INFO(precision);
    models::ResnetTrainConfig half_graph = tiny(data), half_eager = tiny(data);
    half_graph.precision = half_eager.precision = precision;
    half_eager.graph = false;
    models::ResnetResult hg = models::train_resnet(half_graph), he = models::train_resnet(half_eager);
    CHECK(hg.graph);
    REQUIRE(hg.step_losses.size() == he.step_losses.size());
    for (size_t i = 0; i < he.step_losses.size(); ++i) CHECK(hg.step_losses[i] == he.step_losses[i]);
    CHECK(hg.top1 == he.top1);
  }
  fs::remove_all(data);
}

}  // namespace pacer
