// safetensors: round trips of every dtype and layout, the file's alignment, atomic writes
// that never damage the previous file, one test per kind of malformed file (each with its
// own message), and Module::load_state_dict.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "nn/linear.h"
#include "nn/module.h"
#include "nn/safetensors.h"
#include "tests/test_util.h"

namespace pacer {

using test::error_of;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("pacer_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

// A file with header length `len` (the header's own size unless given), then `header`,
// then `data_size` zero bytes.
std::string file_bytes(const std::string& header, size_t data_size, uint64_t len = ~0ull) {
  if (len == ~0ull) len = header.size();
  std::string out;
  for (int i = 0; i < 8; ++i) out += char((len >> (8 * i)) & 0xff);
  return out + header + std::string(data_size, '\0');
}

// The message both inspect and load give for a file with `header` and `data_size` data bytes.
std::string malformed(const std::string& header, size_t data_size = 0) {
  const std::string path = temp_path("bad.safetensors");
  write_bytes(path, file_bytes(header, data_size));
  const std::string a = error_of([&] { nn::inspect_safetensors(path); });
  const std::string b = error_of([&] { nn::load_safetensors(path); });
  std::remove(path.c_str());
  CHECK(a == b);
  CHECK(a.find(path) != std::string::npos);
  return a;
}

std::map<std::string, Tensor> by_name(const std::vector<std::pair<std::string, Tensor>>& v) {
  return std::map<std::string, Tensor>(v.begin(), v.end());
}

}  // namespace

TEST_CASE("safetensors: round trip of the 8 dtypes, views, 0-dim and empty tensors, and metadata") {
  const std::string path = temp_path("rt.safetensors");
  std::vector<std::pair<std::string, Tensor>> in;
  const DType dtypes[] = {DType::F32, DType::F16, DType::BF16, DType::F64,
                          DType::I64, DType::I32, DType::U8,   DType::Bool};
  for (DType dt : dtypes) {
    Tensor base = dt == DType::Bool ? cast(from_vector<uint8_t>({1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1}), dt)
                                    : cast(arange(12) * 2 + 1, dt);
    in.emplace_back(std::string(dtype_name(dt)), reshape(base, {3, 4}));
    in.emplace_back(std::string(dtype_name(dt)) + ".t", transpose(reshape(base, {3, 4}), 0, 1));
    in.emplace_back(std::string(dtype_name(dt)) + ".step", slice(base, 0, 1, 12, 3));
  }
  in.emplace_back("scalar", scalar_tensor(2.5, DType::F64));
  in.emplace_back("empty", zeros({0, 3}, {.dtype = DType::F16}));
  in.emplace_back("grad", randn({2, 2}, {.requires_grad = true}));
  CHECK(!in[1].second.is_contiguous());
  const std::map<std::string, std::string> meta = {{"step", "42"}, {"format", "pt"}, {"note", "ünïcode \"quoted\""}};
  nn::save_safetensors(path, in, meta);

  std::map<std::string, std::string> meta_back;
  const auto out = nn::load_safetensors(path, &meta_back);
  CHECK(meta_back == meta);
  REQUIRE(out.size() == in.size());
  auto got = by_name(out);
  for (const auto& [name, t] : in) {
    INFO(name);
    REQUIRE(got.count(name) == 1);
    const Tensor& b = got[name];
    CHECK(b.dtype() == t.dtype());
    CHECK(b.sizes() == t.sizes());
    CHECK(b.is_contiguous());
    CHECK(b.to_vector<double>() == t.to_vector<double>());
  }
  CHECK(got["scalar"].dim() == 0);
  CHECK(got["empty"].numel() == 0);

  // Loaded in offset order, and the writer put larger elements first, so every tensor
  // starts at a multiple of its element size.
  const auto entries = nn::inspect_safetensors(path);
  REQUIRE(entries.size() == out.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    CHECK(entries[i].name == out[i].first);
    CHECK(entries[i].begin % int64_t(element_size(entries[i].dtype)) == 0);
    if (i > 0) CHECK(entries[i].begin == entries[i - 1].end);
  }
  std::remove(path.c_str());
}

TEST_CASE("safetensors: the data buffer starts at a multiple of 8 and the header is padded with spaces") {
  const std::string path = temp_path("align.safetensors");
  for (int n = 1; n <= 9; ++n) {
    // Names of growing length move the header's natural end across every residue mod 8.
    nn::save_safetensors(path, {{std::string(size_t(n), 'w'), ones({n}, {.dtype = DType::U8})}});
    const std::string bytes = read_bytes(path);
    REQUIRE(bytes.size() >= 8);
    uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = (len << 8) | uint8_t(bytes[size_t(i)]);
    CHECK((8 + len) % 8 == 0);
    CHECK(bytes.size() == 8 + len + size_t(n));
    const std::string header = bytes.substr(8, len);
    CHECK(header.front() == '{');
    CHECK(header.find_last_not_of(' ') == header.rfind('}'));
  }
  std::remove(path.c_str());
}

TEST_CASE("safetensors: a failed save leaves the old file byte-identical and no temp file") {
  const std::string path = temp_path("atomic.safetensors");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  nn::save_safetensors(path, {{"w", arange(6, DType::F32)}});
  const std::string good = read_bytes(path);

  CHECK(error_of([&] { nn::save_safetensors(path, {{"a", ones({2})}, {"a", ones({3})}}); })
            .find("tensor name 'a' appears twice") != std::string::npos);
  CHECK(error_of([&] { nn::save_safetensors(path, {{"a", ones({2})}, {"b", Tensor()}}); })
            .find("tensor 'b' is undefined") != std::string::npos);
  CHECK(error_of([&] { nn::save_safetensors(path, {{"__metadata__", ones({2})}}); }).find("is reserved") !=
        std::string::npos);
  CHECK(read_bytes(path) == good);
  CHECK(!fs::exists(tmp));

  // A failure after the data were written: renaming onto a directory.
  const std::string dir = temp_path("atomic_dir");
  fs::create_directory(dir);
  const std::string msg = error_of([&] { nn::save_safetensors(dir, {{"a", ones({1000})}}); });
  CHECK(msg.find(dir) != std::string::npos);
  CHECK(msg.find("Is a directory") != std::string::npos);
  CHECK(!fs::exists(dir + ".tmp." + std::to_string(::getpid())));
  fs::remove(dir);

  // A missing directory names the path and errno's text.
  const std::string nowhere = temp_path("no_such_dir") + "/x.safetensors";
  CHECK(error_of([&] { nn::save_safetensors(nowhere, {{"a", ones({1})}}); }).find("No such file or directory") !=
        std::string::npos);

  // A successful save replaces the file.
  nn::save_safetensors(path, {{"v", ones({2}, {.dtype = DType::I32})}});
  const auto back = nn::load_safetensors(path);
  REQUIRE(back.size() == 1);
  CHECK(back[0].first == "v");
  CHECK(!fs::exists(tmp));
  std::remove(path.c_str());
}

TEST_CASE("safetensors: a missing file names the file and errno's text") {
  const std::string path = temp_path("missing.safetensors");
  const std::string msg = error_of([&] { nn::load_safetensors(path); });
  CHECK(msg.find(path) != std::string::npos);
  CHECK(msg.find("cannot open: No such file or directory") != std::string::npos);
}

TEST_CASE("safetensors malformed: file shorter than 8 bytes") {
  const std::string path = temp_path("short.safetensors");
  write_bytes(path, "abc");
  CHECK(error_of([&] { nn::inspect_safetensors(path); })
            .find("file is 3 bytes, shorter than the 8-byte header length") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("safetensors malformed: header length larger than the file") {
  const std::string path = temp_path("long.safetensors");
  write_bytes(path, file_bytes("{}", 0, 1000));
  CHECK(error_of([&] { nn::load_safetensors(path); })
            .find("header length 1000 is larger than the file (2 bytes after the length)") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("safetensors malformed: absurd header length") {
  const std::string path = temp_path("absurd.safetensors");
  write_bytes(path, file_bytes("{}", 0, 200'000'000));
  CHECK(error_of([&] { nn::load_safetensors(path); }).find("header length 200000000 exceeds the 100 MB limit") !=
        std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("safetensors malformed: header is not JSON") {
  CHECK(malformed("{\"a\": nope}").find("header is not valid JSON") != std::string::npos);
  CHECK(malformed("").find("header is not valid JSON") != std::string::npos);
}

TEST_CASE("safetensors malformed: header is not an object") {
  CHECK(malformed("[1, 2]").find("header is not a JSON object (got a JSON array)") != std::string::npos);
}

TEST_CASE("safetensors malformed: entry is not an object") {
  CHECK(malformed(R"({"a": 3})").find("entry 'a' is not a JSON object") != std::string::npos);
}

TEST_CASE("safetensors malformed: entry misses dtype, shape or data_offsets") {
  CHECK(malformed(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", 4).find("entry 'a' has no \"dtype\" field") !=
        std::string::npos);
  CHECK(malformed(R"({"a": {"dtype": "F32", "data_offsets": [0, 4]}})", 4).find("entry 'a' has no \"shape\" field") !=
        std::string::npos);
  CHECK(malformed(R"({"a": {"dtype": "F32", "shape": [1]}})", 4).find("entry 'a' has no \"data_offsets\" field") !=
        std::string::npos);
}

TEST_CASE("safetensors malformed: unknown dtype") {
  CHECK(malformed(R"({"a": {"dtype": "F8", "shape": [1], "data_offsets": [0, 1]}})", 1)
            .find("entry 'a' has unknown dtype \"F8\"") != std::string::npos);
  CHECK(malformed(R"({"a": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})", 4)
            .find("entry 'a' has unknown dtype 4") != std::string::npos);
}

TEST_CASE("safetensors malformed: negative or non-integer shape") {
  CHECK(malformed(R"({"a": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 0]}})")
            .find("entry 'a' has an invalid shape [2,-1]") != std::string::npos);
  CHECK(malformed(R"({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4)
            .find("entry 'a' has an invalid shape [1.5]") != std::string::npos);
  CHECK(malformed(R"({"a": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}})", 8)
            .find("entry 'a' has an invalid shape \"2\"") != std::string::npos);
}

TEST_CASE("safetensors malformed: bad data_offsets") {
  for (const char* off : {"[4]", "[-1, 4]", "[4, 0]", "[0.0, 4]", "[0, 4, 8]", "\"0-4\""}) {
    INFO(off);
    const std::string h = std::string(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": )") + off + "}}";
    CHECK(malformed(h, 4).find("entry 'a' has invalid data_offsets") != std::string::npos);
  }
}

TEST_CASE("safetensors malformed: data_offsets beyond the data buffer") {
  CHECK(malformed(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8)
            .find("entry 'a' ends at byte 16, beyond the 8-byte data buffer") != std::string::npos);
}

TEST_CASE("safetensors malformed: byte size does not match the shape") {
  CHECK(malformed(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8)
            .find("entry 'a' holds 8 bytes but shape [3] of F32 needs 12") != std::string::npos);
  CHECK(malformed(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}})", 8)
            .find("entry 'a' has an invalid shape") != std::string::npos);
}

TEST_CASE("safetensors malformed: overlapping tensors") {
  CHECK(malformed(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12)
            .find("entries 'a' [0, 8) and 'b' [4, 12) overlap") != std::string::npos);
}

TEST_CASE("safetensors malformed: bytes that belong to no tensor") {
  CHECK(malformed(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                      "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})", 12)
            .find("bytes [4, 8) of the data buffer belong to no tensor") != std::string::npos);
  CHECK(malformed(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8)
            .find("bytes [0, 4) of the data buffer belong to no tensor") != std::string::npos);
  CHECK(malformed(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 8)
            .find("bytes [4, 8) of the data buffer belong to no tensor") != std::string::npos);
}

TEST_CASE("safetensors malformed: a name that appears twice") {
  CHECK(malformed(R"({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                      "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})", 2)
            .find("name 'a' appears twice in the header") != std::string::npos);
}

TEST_CASE("safetensors malformed: metadata that is not a map of strings") {
  CHECK(malformed(R"({"__metadata__": {"step": 3}})").find("__metadata__ value of 'step' is not a string") !=
        std::string::npos);
  CHECK(malformed(R"({"__metadata__": []})").find("__metadata__ is not a JSON object") != std::string::npos);
}

TEST_CASE("safetensors malformed: BOOL data other than 0 and 1 is refused on load") {
  const std::string path = temp_path("bool.safetensors");
  std::string bytes = file_bytes(R"({"m": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}})", 2);
  bytes.back() = 2;
  write_bytes(path, bytes);
  CHECK(nn::inspect_safetensors(path).size() == 1);
  CHECK(error_of([&] { nn::load_safetensors(path); }).find("entry 'm' is BOOL but holds the byte 2 at element 1") !=
        std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("safetensors: a well-formed header with padding, no metadata and no tensors is read") {
  const std::string path = temp_path("empty.safetensors");
  write_bytes(path, file_bytes("{}      ", 0));
  std::map<std::string, std::string> meta = {{"stale", "x"}};
  CHECK(nn::load_safetensors(path, &meta).empty());
  CHECK(meta.empty());
  std::remove(path.c_str());
}

namespace {

// A small model with a buffer and a child module: keys scale, fc.weight, fc.bias (own
// parameters and buffers come before children's, as in PyTorch).
class Net : public nn::Module {
 public:
  Net() {
    fc = register_module("fc", std::make_shared<nn::Linear>(3, 2));
    scale = register_buffer("scale", ones({2}));
  }
  std::shared_ptr<nn::Linear> fc;
  Tensor scale;
};

}  // namespace

TEST_CASE("load_state_dict: strict load copies every value in place") {
  Net a, b;
  const TensorImpl* weight_impl = b.fc->weight.impl();
  const auto result = b.load_state_dict(a.state_dict());
  CHECK(result.missing.empty());
  CHECK(result.unexpected.empty());
  CHECK(b.fc->weight.impl() == weight_impl);
  CHECK(b.fc->weight.requires_grad());
  CHECK(b.fc->weight.to_vector<float>() == a.fc->weight.to_vector<float>());
  CHECK(b.fc->bias.to_vector<float>() == a.fc->bias.to_vector<float>());
}

TEST_CASE("load_state_dict: strict mode lists every missing and unexpected key, and copies nothing") {
  Net a, b;
  const auto before = b.fc->weight.to_vector<float>();
  const std::vector<std::pair<std::string, Tensor>> state = {
      {"fc.weight", a.fc->weight}, {"fc.wieght", a.fc->weight}, {"extra", ones({1})}};
  const std::string msg = error_of([&] { b.load_state_dict(state); });
  CHECK(msg.find("missing keys: scale, fc.bias") != std::string::npos);
  CHECK(msg.find("unexpected keys: fc.wieght, extra") != std::string::npos);
  CHECK(b.fc->weight.to_vector<float>() == before);

  const auto result = b.load_state_dict(state, /*strict=*/false);
  CHECK(result.missing == std::vector<std::string>{"scale", "fc.bias"});
  CHECK(result.unexpected == std::vector<std::string>{"fc.wieght", "extra"});
  CHECK(b.fc->weight.to_vector<float>() == a.fc->weight.to_vector<float>());
}

TEST_CASE("load_state_dict: shape and dtype mismatches name the key, the expectation and the value") {
  Net b;
  const auto before = b.fc->bias.to_vector<float>();
  CHECK(error_of([&] { b.load_state_dict({{"fc.bias", zeros({2})}, {"fc.weight", zeros({2, 2})}}, false); }) ==
        "load_state_dict: 'fc.weight' expected shape [2, 3] (float32), got shape [2, 2] (float32)");
  CHECK(b.fc->bias.to_vector<float>() == before);
  CHECK(error_of([&] { b.load_state_dict({{"scale", zeros({2}, {.dtype = DType::F64})}}, false); }) ==
        "load_state_dict: 'scale' expected shape [2] (float32), got shape [2] (float64)");
  CHECK(error_of([&] { b.load_state_dict({{"scale", zeros({2})}, {"scale", zeros({2})}}, false); })
            .find("key 'scale' appears twice") != std::string::npos);
}

TEST_CASE("load_state_dict: a state saved to safetensors loads into a fresh module") {
  const std::string path = temp_path("net.safetensors");
  Net a, b;
  {
    NoGradGuard g;
    fill_(a.scale, 3.0);
  }
  nn::save_safetensors(path, a.state_dict());
  b.load_state_dict(nn::load_safetensors(path));
  for (const auto& [name, t] : a.state_dict()) {
    INFO(name);
    CHECK(by_name(b.state_dict())[name].to_vector<float>() == t.to_vector<float>());
  }
  std::remove(path.c_str());
}

}  // namespace pacer
