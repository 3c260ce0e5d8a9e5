// Tensor data model (core/tensor.h): factories, view geometry, element access, errors,
// printing, devices and result_type. Views are built with the public ops because that is
// how users make them; the geometry they must produce is PyTorch's.
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "ops/shape_utils.h"

namespace pacer::test {

namespace {
Shape shape(std::initializer_list<int64_t> v) { return Shape(v.begin(), v.end()); }
}  // namespace

TEST_CASE("factories: zeros, ones, full, arange, linspace, from_vector") {
  Tensor z = zeros({2, 3});
  CHECK(z.sizes() == shape({2, 3}));
  CHECK(z.dtype() == f32);
  CHECK(z.is_contiguous());
  CHECK(z.to_vector<float>() == std::vector<float>(6, 0.0f));
  CHECK(ones({4}, {.dtype = i32}).to_vector<int32_t>() == std::vector<int32_t>(4, 1));
  Tensor f = full({2, 2}, 2.5, {.dtype = f64});
  CHECK(f.dtype() == f64);
  CHECK(f.to_vector<double>() == std::vector<double>(4, 2.5));
  CHECK(ones({2}, {.requires_grad = true}).requires_grad());

  Tensor a = arange(5);
  CHECK(a.dtype() == i64);  // integral arguments give int64, as torch.arange
  CHECK(a.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  Tensor af = arange(0.0, 1.0, 0.25);
  CHECK(af.dtype() == f32);
  CHECK(af.to_vector<float>() == std::vector<float>{0.0f, 0.25f, 0.5f, 0.75f});
  CHECK(arange(5, 0, -2).to_vector<int64_t>() == std::vector<int64_t>{5, 3, 1});
  CHECK(arange(1, 3, 1, f64).dtype() == f64);
  CHECK_THROWS_AS(arange(0, 5, 0), Error);   // zero step
  CHECK_THROWS_AS(arange(5, 0, 1), Error);   // cannot walk backwards with a positive step

  Tensor l = linspace(0.0, 1.0, 5);
  CHECK(l.to_vector<float>() == std::vector<float>{0.0f, 0.25f, 0.5f, 0.75f, 1.0f});
  // The last element is exactly `end` even when the step does not divide it exactly.
  std::vector<double> l7 = linspace(0.0, 1.0, 7, {.dtype = f64}).to_vector<double>();
  REQUIRE(l7.size() == 7);
  CHECK(l7.front() == 0.0);
  CHECK(l7.back() == 1.0);
  CHECK(l7[3] == doctest::Approx(0.5));
  CHECK(linspace(2.0, 3.0, 0).numel() == 0);

  Tensor v = from_vector<int32_t>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(v.dtype() == i32);
  CHECK(v.sizes() == shape({2, 3}));
  CHECK(v.data_ptr<int32_t>()[4] == 5);
  CHECK_THROWS_AS(v.data_ptr<float>(), Error);  // wrong element type
  CHECK(from_vector<float>({1.5f, 2.5f}, {}, {.dtype = f64}).to_vector<double>() == std::vector<double>{1.5, 2.5});
  CHECK_THROWS_WITH_AS(from_vector<float>({1, 2, 3}, {2, 2}), doctest::Contains("holds 4 elements"), Error);
}

// Regression test (was a bug): linspace_kernel (ops/cpu/factory.cpp) fills index i >= n/2 from the end, so for steps == 1
// the only element is `end`: linspace(2, 3, 1) gives [3.] where torch.linspace gives [2.].
TEST_CASE("linspace with one step returns start") {
  CHECK(linspace(2.0, 3.0, 1).to_vector<float>() == std::vector<float>{2.0f});
}

TEST_CASE("from_blob wraps memory without copying and runs its deleter exactly once") {
  std::vector<float> buffer{1, 2, 3, 4, 5, 6};
  int deleted = 0;
  void* seen = nullptr;
  {
    Tensor t = from_blob(buffer.data(), {2, 3}, f32, [&](void* p) {
      ++deleted;
      seen = p;
    });
    CHECK(t.data() == buffer.data());
    buffer[5] = 60;  // no copy: the tensor sees the change
    CHECK(t.to_vector<float>().back() == 60.0f);
    Tensor view = transpose(t, 0, 1);  // a view keeps the storage alive
    t = Tensor();
    CHECK(deleted == 0);
    CHECK(view.to_vector<float>() == std::vector<float>{1, 4, 2, 5, 3, 60});
  }
  CHECK(deleted == 1);
  CHECK(seen == buffer.data());
  // No deleter: releasing must not touch the caller's memory.
  { Tensor t = from_blob(buffer.data(), {6}, f32); }
  CHECK(buffer[0] == 1.0f);
}

TEST_CASE("view geometry: transpose, slice with step, expand, select") {
  Tensor x = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(x.strides() == shape({3, 1}));

  Tensor t = transpose(x, 0, 1);
  CHECK(t.sizes() == shape({3, 2}));
  CHECK(t.strides() == shape({1, 3}));
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.data() == x.data());  // shares storage
  CHECK(t.to_vector<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(contiguous(t).is_contiguous());
  CHECK(contiguous(t).strides() == shape({2, 1}));

  Tensor s = slice(x, 1, 0, 3, 2);  // columns 0 and 2
  CHECK(s.sizes() == shape({2, 2}));
  CHECK(s.strides() == shape({3, 2}));
  CHECK_FALSE(s.is_contiguous());
  CHECK(s.to_vector<float>() == std::vector<float>{1, 3, 4, 6});

  Tensor row = slice(x, 0, 1, 2);  // one row: contiguous, offset by 3 elements
  CHECK(row.storage_offset() == 3);
  CHECK(row.is_contiguous());
  CHECK(slice(x, 1, 1, 100).sizes() == shape({2, 2}));  // end is clamped

  Tensor e = expand(from_vector<float>({1, 2, 3}, {3, 1}), {3, 4});
  CHECK(e.sizes() == shape({3, 4}));
  CHECK(e.strides() == shape({1, 0}));
  CHECK_FALSE(e.is_contiguous());
  CHECK(e.to_vector<float>() == std::vector<float>{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});

  Tensor c = select(x, 1, 2);  // column 2
  CHECK(c.sizes() == shape({2}));
  CHECK(c.strides() == shape({3}));
  CHECK(c.to_vector<float>() == std::vector<float>{3, 6});

  // Size-1 dimensions do not affect contiguity, whatever their stride (PyTorch's rule).
  CHECK(empty_strided({2, 1, 3}, {3, 99, 1}).is_contiguous());
  CHECK_FALSE(empty_strided({2, 3}, {1, 2}).is_contiguous());
}

TEST_CASE("size() and stride() take negative dims and reject out-of-range ones") {
  Tensor x = zeros({2, 3, 4});
  CHECK(x.size(-1) == 4);
  CHECK(x.size(-3) == 2);
  CHECK(x.size(1) == 3);
  CHECK(x.stride(-1) == 1);
  CHECK(x.stride(-2) == 4);
  CHECK(x.stride(0) == 12);
  CHECK_THROWS_WITH_AS(x.size(3), doctest::Contains("dimension 3 out of range"), Error);
  CHECK_THROWS_WITH_AS(x.size(-4), doctest::Contains("[-3, 2]"), Error);
  CHECK_THROWS_AS(x.stride(3), Error);
  CHECK_THROWS_AS(x.stride(-4), Error);
  CHECK_THROWS_AS(scalar_tensor(1.0, f32).size(0), Error);  // a 0-dim tensor has no dims
}

TEST_CASE("item() and scalar_item()") {
  CHECK(from_vector<float>({3.5f}).item<float>() == 3.5f);
  CHECK(from_vector<int64_t>({-7}, {1, 1}).item<int64_t>() == -7);
  CHECK(from_vector<int64_t>({int64_t(1) << 60}).item<int64_t>() == int64_t(1) << 60);  // exact, no double
  CHECK(from_vector<bool>({true}).item<bool>());
  CHECK(from_vector<Half>({Half(0.5f)}).item<float>() == 0.5f);
  CHECK(scalar_tensor(2.0, f64).item<double>() == 2.0);
  CHECK(from_vector<float>({2.75f}).item<int64_t>() == 2);  // truncation, as a C++ cast
  CHECK(from_vector<int32_t>({5}).scalar_item().kind() == Scalar::Kind::Int);
  CHECK(from_vector<double>({5}).scalar_item().is_floating());
  CHECK_THROWS_WITH_AS(zeros({2, 3}).item<float>(), doctest::Contains("one element"), Error);
  CHECK_THROWS_WITH_AS(zeros({0}).scalar_item(), doctest::Contains("one element"), Error);
}

TEST_CASE("an undefined tensor throws pacer::Error instead of crashing") {
  Tensor u;
  CHECK_FALSE(u.defined());
  CHECK_THROWS_WITH_AS(u.sizes(), doctest::Contains("undefined"), Error);
  CHECK_THROWS_AS(u.strides(), Error);
  CHECK_THROWS_AS(u.dim(), Error);
  CHECK_THROWS_AS(u.numel(), Error);
  CHECK_THROWS_AS(u.dtype(), Error);
  CHECK_THROWS_AS(u.device(), Error);
  CHECK_THROWS_AS(u.is_contiguous(), Error);
  CHECK_THROWS_AS(u.data(), Error);
  CHECK_THROWS_AS(u.size(0), Error);
  CHECK_THROWS_AS(u.item<float>(), Error);
  CHECK_THROWS_AS(u.to_vector<float>(), Error);
  CHECK_THROWS_AS(u.data_ptr<float>(), Error);
  CHECK_THROWS_AS(u.set_requires_grad(true), Error);
  CHECK_THROWS_AS(add(u, ones({1})), Error);
  CHECK(u.str() == "tensor(undefined)");
}

// Regression test (was a bug): Tensor::requires_grad(), grad(), grad_fn(), is_leaf() and version() (core/tensor.cpp,
// core/tensor.h) dereference impl_ without checking it, so on an undefined tensor they
// segfault instead of answering (PyTorch: false / undefined / null) or throwing pacer::Error.
TEST_CASE("undefined tensor: autograd accessors do not crash") {
  Tensor u;
  bool needs_grad = true;
  try {
    needs_grad = u.requires_grad();
  } catch (const Error&) {
    needs_grad = false;
  }
  CHECK_FALSE(needs_grad);
  auto safe = [](auto f) {
    try {
      f();
    } catch (const Error&) {
    }
  };
  safe([&] { CHECK_FALSE(u.grad().defined()); });
  safe([&] { CHECK(u.grad_fn() == nullptr); });
  safe([&] { (void)u.is_leaf(); });
  CHECK_THROWS_AS(u.version(), Error);
}

TEST_CASE("printing") {
  CHECK(from_vector<float>({1, 2}).str() == "tensor([1., 2.])");
  CHECK(from_vector<double>({0.5, 1.25}, {1, 2}).str() == "tensor([[0.5000, 1.2500]], dtype=float64)");
  CHECK(ones({2}, {.requires_grad = true}).str() == "tensor([1., 1.], requires_grad=True)");
  // Values are right-aligned to the widest one, as PyTorch prints them.
  CHECK(from_vector<int32_t>({1, -2}).str() == "tensor([ 1, -2], dtype=int32)");
  CHECK(from_vector<bool>({true, false}).str() == "tensor([ True, False])");
  CHECK(from_vector<float>({1.5f, NAN, -INFINITY}).str() == "tensor([1.5000,    nan,   -inf])");
  CHECK(scalar_tensor(3.5, f32).str() == "tensor(3.5000)");
  CHECK(from_vector<float>({1e-5f, 1.0f}).str() == "tensor([1.0000e-05, 1.0000e+00])");  // wide range
  CHECK(from_vector<Half>({Half(1.5f)}).str() == "tensor([1.5000], dtype=float16)");
  CHECK(transpose(from_vector<float>({1, 2, 3, 4}, {2, 2}), 0, 1).str() == "tensor([[1., 3.],\n        [2., 4.]])");
  CHECK(from_vector<float>({1, 2, 3, 4}, {2, 1, 2}).str() == "tensor([[[1., 2.]],\n\n        [[3., 4.]]])");
  CHECK(zeros({0}).str() == "tensor([])");

  // Over 1000 elements: three items from each edge and "..." in between. The spacing around
  // "..." is left open; the edges and the elision are what must hold.
  const std::string line = arange(2000).str();
  CAPTURE(line);
  CHECK(line.rfind("tensor([   0,    1,    2, ", 0) == 0);
  CHECK(line.find("...") != std::string::npos);
  CHECK(line.find("1997, 1998, 1999])") == line.size() - 18);
  CHECK(line.find("   3,") == std::string::npos);  // elided
  CHECK(arange(1000).str().find("...") == std::string::npos);  // exactly 1000: printed in full
  const std::string big = reshape(arange(2000), {40, 50}).str();
  CAPTURE(big);
  CHECK(big.rfind("tensor([[   0,    1,    2, ", 0) == 0);
  CHECK(big.find("  49],\n        [  50,   51,   52, ") != std::string::npos);
  CHECK(big.find("\n        ...,\n        [1850, 1851, 1852, ") != std::string::npos);
  CHECK(big.find("1997, 1998, 1999]])") == big.size() - 19);
  CHECK(big.find(" 150,") == std::string::npos);  // row 3 is summarized away

  std::ostringstream os;
  os << from_vector<float>({1, 2});
  CHECK(os.str() == "tensor([1., 2.])");
}

// Regression test (was a bug): Tensor::str() (core/printing.cpp) formats the size suffix of an empty tensor with the
// Shape formatter: "tensor([], size=[0, 3])", where PyTorch prints "size=(0, 3)".
TEST_CASE("printing an empty 2-d tensor uses PyTorch's size=(...)") {
  CHECK(zeros({0, 3}).str() == "tensor([], size=(0, 3))");
}

TEST_CASE("Device parsing and printing") {
  CHECK(Device("cpu") == kCPU);
  CHECK(Device("cpu").is_cpu());
  CHECK(Device("cuda").is_cuda());
  CHECK(Device("cuda").index == 0);
  CHECK(Device("cuda:1").is_cuda());
  CHECK(Device("cuda:1").index == 1);
  CHECK(Device("cuda:1").str() == "cuda:1");
  CHECK(fmt::format("{}", Device("cuda:3")) == "cuda:3");
  CHECK(kCPU.str() == "cpu");
  CHECK_FALSE(Device("cuda:0") == Device("cuda:1"));
  for (const char* bad : {"gpu", "CPU", "", "cuda:", "cuda:-1", "cuda:1x", "cuda1", "cuda:x", " cpu"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(Device{bad}, doctest::Contains("unknown device"), Error);
  }
}

// Regression test (was a bug): Device::Device(std::string_view) (core/device.cpp) parses the index as int and stores it
// in the int16_t field without a range check: Device("cuda:40000") becomes cuda:-25536
// instead of throwing.
TEST_CASE("Device parsing rejects an index that does not fit") {
  CHECK_THROWS_AS(Device("cuda:40000"), Error);
}

TEST_CASE("asking for a CUDA tensor without a usable CUDA backend is a clear error") {
  // Where a GPU and the CUDA allocator are present the tensor is valid instead; everywhere
  // else (this CPU build) it must be a pacer::Error naming the device, never a crash.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string message;
    try {
      Tensor t = attempt == 0 ? empty({2}, {.device = Device("cuda:0")}) : zeros({2}, {.device = Device("cuda:0")});
      CHECK(t.device() == Device("cuda:0"));
      CHECK(t.numel() == 2);
      continue;
    } catch (const Error& e) {
      message = e.what();
    }
    CAPTURE(message);
    CHECK(message.find("cuda:0") != std::string::npos);
    if (attempt == 0) CHECK(message.find("CUDA") != std::string::npos);
  }
}

TEST_CASE("result_type: PyTorch promotion with wrapped numbers and 0-dim tensors") {
  using ops::result_type;
  Tensor i32t = from_vector<int32_t>({1, 2});
  Tensor f16t = from_vector<Half>({Half(1.0f), Half(2.0f)});
  CHECK(result_type({i32t, wrap(2.5)}) == f32);  // a float number lifts ints to the default float
  CHECK(result_type({from_vector<int64_t>({1}), wrap(2.5)}) == f32);
  CHECK(result_type({f16t, wrap(1.0)}) == f16);  // same category: the tensor's dtype wins
  CHECK(result_type({i32t, scalar_tensor(0, i64)}) == i32);
  CHECK(result_type({i32t, scalar_tensor(0.0, f64)}) == f64);  // higher category: promote
  CHECK(result_type({i32t, wrap(int64_t(1) << 40)}) == i32);
  CHECK(result_type({from_vector<bool>({true}), wrap(2)}) == i64);
  CHECK(result_type({from_vector<uint8_t>({1}), wrap(-1)}) == u8);
  CHECK(result_type({scalar_tensor(1, i64), wrap(2.5)}) == f32);
  CHECK(result_type({f16t, scalar_tensor(1.0, f64)}) == f16);
  CHECK(result_type({from_vector<float>({1}), from_vector<double>({1})}) == f64);
  // The ops apply the same rule.
  CHECK((i32t * 2.5).dtype() == f32);
  CHECK((i32t * 2.5).to_vector<float>() == std::vector<float>{2.5f, 5.0f});
  CHECK((f16t + 1.0).dtype() == f16);
  CHECK((i32t + scalar_tensor(0, i64)).dtype() == i32);
  CHECK((i32t + scalar_tensor(0.0, f64)).dtype() == f64);
}

// Regression test (was a bug): wrap() (ops/defs/pointwise_binary.cpp) stores a C++ double in a float32 0-dim tensor,
// so an f64 tensor times 1.0000001 computes with 1.0000001f = 1.00000011920929 (PyTorch keeps
// wrapped numbers in double; result_type already maps wrapped floats to f32 for promotion).
TEST_CASE("a wrapped double keeps full precision with a float64 tensor") {
  CAPTURE(fmt::format("{:.17g}", (from_vector<double>({1.0}) * 1.0000001).item<double>()));
  CHECK((from_vector<double>({1.0}) * 1.0000001).item<double>() == 1.0000001);
  CHECK((from_vector<double>({0.0}) + 0.1).item<double>() == 0.1);
}

}  // namespace pacer::test
