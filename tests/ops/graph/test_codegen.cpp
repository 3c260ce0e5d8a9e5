// The CUDA side of fused pointwise nodes, as far as a machine without a GPU can check it:
// the generated source, and (in CUDA builds) that NVRTC compiles it and that the on-disk
// cache is used, written atomically and repaired. Launches are tested in tests/gpu.

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "ops/graph/pointwise_codegen.h"
#include "tests/test_util.h"
#if defined(PACER_TEST_HAVE_CUDA)
#include "ops/cuda/nvrtc.h"
#endif

using namespace pacer;
using namespace pacer::graph;

namespace {

// relu(x * y + s), s a host scalar, in bf16 out; and sum(x * x).
PwProgram chain() {
  PwProgram p;
  p.num_inputs = 3;
  p.code = {{PwOp::Mul, 0, 1, -1, 0, DType::F32}, {PwOp::Add, 3, 2, -1, 0, DType::F32}, {PwOp::Relu, 4, -1, -1, 0, DType::F32}};
  p.outputs = {5};
  return p;
}
PwProgram norm() {
  PwProgram p;
  p.num_inputs = 1;
  p.code = {{PwOp::Mul, 0, 0, -1, 0, DType::F32}};
  p.outputs = {1};
  p.reduce_sum = true;
  return p;
}
const PwSignature kChainSig{{DType::F16, DType::F32, DType::F32},
                            {PwInputKind::Tensor, PwInputKind::Tensor, PwInputKind::HostScalar},
                            {DType::BF16}};
const PwSignature kNormSig{{DType::F32}, {PwInputKind::Tensor}, {DType::F32}};

}  // namespace

TEST_CASE("the CUDA source of a fused program loads, computes and stores each dtype as the signature says") {
  const std::string s = cuda_pointwise_source(chain(), kChainSig, "k");
  CHECK(s.find("extern \"C\" __global__ void k(const Binding* table, const Chunk* chunks)") != std::string::npos);
  CHECK(s.find("struct Binding { const void* in[3]; float value[3]; void* out[1]; long long n; };") != std::string::npos);
  CHECK(s.find("const float r0 = pacer_h2f(((const pacer_u16*)b.in[0])[i]);") != std::string::npos);
  CHECK(s.find("const float r2 = b.value[2];") != std::string::npos);
  CHECK(s.find("const float r5 = (r4 < 0.0f ? 0.0f : r4);") != std::string::npos);
  CHECK(s.find("((pacer_u16*)b.out[0])[i] = pacer_f2b(r5);") != std::string::npos);
  const std::string r = cuda_pointwise_source(norm(), kNormSig, "n");
  CHECK(r.find("__global__ void n_finish(") != std::string::npos);
  CHECK(r.find("sum += (double)r1;") != std::string::npos);
  CHECK(test::error_of([] { cuda_pointwise_source(chain(), kNormSig, "k"); }).find("the signature has 1 inputs") !=
        std::string::npos);
  // The table layout the host writes matches the struct the kernel declares.
  CHECK(PwBindingLayout::binding_bytes(3, 1) == 56);  // 24 pointers, 12 values (+4 pad), 8, 8
  CHECK(PwBindingLayout::out_offset(3) == 40);
  CHECK(PwBindingLayout::n_offset(3, 1) == 48);
}

#if defined(PACER_TEST_HAVE_CUDA)
TEST_CASE("NVRTC compiles generated kernels for sm_90, through an atomic on-disk cache that repairs a bad file") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "pacer_nvrtc_cache_test";
  fs::remove_all(dir);
  setenv("PACER_NVRTC_CACHE", dir.c_str(), 1);
  CHECK(ops::cuda::nvrtc_version() >= 12000);
  for (const auto& [p, sig] : {std::pair{chain(), kChainSig}, std::pair{norm(), kNormSig}}) {
    const std::string src = cuda_pointwise_source(p, sig, "pacer_fused");
    const ops::cuda::NvrtcBinary first = ops::cuda::nvrtc_compile(src, 90);
    CHECK_FALSE(first.from_cache);
    REQUIRE(first.cubin.size() > 16);
    CHECK(first.cubin.compare(0, 4, "\x7f" "ELF") == 0);
    REQUIRE(fs::exists(first.cache_path));
    CHECK(fs::path(first.cache_path).parent_path() == dir);
    const ops::cuda::NvrtcBinary again = ops::cuda::nvrtc_compile(src, 90);
    CHECK(again.from_cache);
    CHECK(again.cubin == first.cubin);
    // Another architecture is another entry.
    CHECK_FALSE(ops::cuda::nvrtc_compile(src, 80).from_cache);
    // A truncated cache file (a crash of an older writer, a full disk) is not trusted.
    std::ofstream(first.cache_path, std::ios::trunc) << "\x7f" "E";
    const ops::cuda::NvrtcBinary repaired = ops::cuda::nvrtc_compile(src, 90);
    CHECK_FALSE(repaired.from_cache);
    CHECK(repaired.cubin == first.cubin);
  }
  // No temporary files are left behind.
  for (const auto& e : fs::directory_iterator(dir)) CHECK(e.path().extension() == ".cubin");
  CHECK(test::error_of([] { ops::cuda::nvrtc_compile("this is not CUDA", 90); }).find("NVRTC could not compile") !=
        std::string::npos);
  unsetenv("PACER_NVRTC_CACHE");
  fs::remove_all(dir);
}
#endif
