#include "ops/cuda/nvrtc.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <nvrtc.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/error.h"

namespace pacer::ops::cuda {

// No multiply-add contraction: each product is rounded before it is added, as the unfused
// kernels round it (a fused loop equals the ops it replaces, bit for bit). Part of the cache
// key, with the rest of the options that change the code.
constexpr const char* kNoFma = "--fmad=false";
constexpr const char* kOptions = "--std=c++17 --fmad=false";


namespace {

// The NVRTC entry points, resolved from the library dlopen finds.
struct Nvrtc {
  decltype(&nvrtcVersion) version = nullptr;
  decltype(&nvrtcCreateProgram) create = nullptr;
  decltype(&nvrtcCompileProgram) compile = nullptr;
  decltype(&nvrtcGetProgramLogSize) log_size = nullptr;
  decltype(&nvrtcGetProgramLog) log = nullptr;
  decltype(&nvrtcGetCUBINSize) cubin_size = nullptr;
  decltype(&nvrtcGetCUBIN) cubin = nullptr;
  decltype(&nvrtcDestroyProgram) destroy = nullptr;
  decltype(&nvrtcGetErrorString) error_string = nullptr;
};

const Nvrtc& nvrtc() {
  static const Nvrtc lib = [] {
    void* h = nullptr;
    for (const char* name : {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"})
      if ((h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    PACER_CHECK(h != nullptr,
                "fused CUDA kernels need NVRTC, and no libnvrtc.so.13 / .12 / .so could be loaded ({}); add the "
                "CUDA toolkit's lib64 (or site-packages/nvidia/cuda_nvrtc/lib) to LD_LIBRARY_PATH",
                dlerror());
    Nvrtc n;
    auto get = [&](auto& fn, const char* sym) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, sym));
      PACER_CHECK(fn != nullptr, "NVRTC: the loaded library lacks {}", sym);
    };
    get(n.version, "nvrtcVersion");
    get(n.create, "nvrtcCreateProgram");
    get(n.compile, "nvrtcCompileProgram");
    get(n.log_size, "nvrtcGetProgramLogSize");
    get(n.log, "nvrtcGetProgramLog");
    get(n.cubin_size, "nvrtcGetCUBINSize");
    get(n.cubin, "nvrtcGetCUBIN");
    get(n.destroy, "nvrtcDestroyProgram");
    get(n.error_string, "nvrtcGetErrorString");
    return n;
  }();
  return lib;
}

void check(nvrtcResult r, const char* what) {
  PACER_CHECK(r == NVRTC_SUCCESS, "NVRTC: {} failed: {}", what, nvrtc().error_string(r));
}

// FNV-1a, 64 bits: names cache files (a collision would need the same 64-bit hash of two
// different sources for one architecture and NVRTC version).
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool is_cubin(const std::string& bytes) { return bytes.size() > 16 && bytes.compare(0, 4, "\x7f" "ELF") == 0; }

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes `bytes` under `path` atomically: a temporary file in the same folder, renamed.
void write_atomically(const std::filesystem::path& path, const std::string& bytes) {
  static std::atomic<uint64_t> counter{0};
  const std::filesystem::path tmp =
      path.string() + fmt::format(".tmp.{}.{}", static_cast<long>(getpid()), counter.fetch_add(1));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.flush();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return;  // a full or read-only disk: the kernel still works, uncached
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

}  // namespace

int nvrtc_version() {
  int major = 0, minor = 0;
  check(nvrtc().version(&major, &minor), "nvrtcVersion");
  return major * 1000 + minor * 10;
}

std::string nvrtc_cache_dir() {
  std::filesystem::path dir;
  if (const char* p = std::getenv("PACER_NVRTC_CACHE"); p && *p) dir = p;
  else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) dir = std::filesystem::path(x) / "pacer" / "nvrtc";
  else if (const char* h = std::getenv("HOME"); h && *h) dir = std::filesystem::path(h) / ".cache" / "pacer" / "nvrtc";
  else return "";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  return ec ? std::string() : dir.string();
}

NvrtcBinary nvrtc_compile(const std::string& source, int arch) {
  PACER_CHECK(arch >= 50 && arch < 1000, "nvrtc_compile: expected a GPU architecture like 90 (sm_90), got {}", arch);
  NvrtcBinary out;
  const int version = nvrtc_version();
  const std::string dir = nvrtc_cache_dir();
  if (!dir.empty()) {
    const uint64_t key = fnv1a(fmt::format("{}\n--sm_{}\n--nvrtc {}\n{}", source, arch, version, kOptions));
    out.cache_path = (std::filesystem::path(dir) / fmt::format("{:016x}-sm{}.cubin", key, arch)).string();
    std::string cached = read_file(out.cache_path);
    if (is_cubin(cached)) {
      out.cubin = std::move(cached);
      out.from_cache = true;
      return out;
    }
  }
  static std::mutex m;  // NVRTC programs are independent, but one compile at a time keeps memory bounded
  std::lock_guard<std::mutex> lock(m);
  const Nvrtc& n = nvrtc();
  nvrtcProgram prog = nullptr;
  check(n.create(&prog, source.c_str(), "pacer_fused.cu", 0, nullptr, nullptr), "nvrtcCreateProgram");
  struct Destroy {
    nvrtcProgram* p;
    ~Destroy() { nvrtc().destroy(p); }
  } destroy{&prog};
  const std::string arch_flag = fmt::format("--gpu-architecture=sm_{}", arch);
  const char* options[] = {arch_flag.c_str(), "--std=c++17", kNoFma};
  const nvrtcResult r = n.compile(prog, 3, options);
  if (r != NVRTC_SUCCESS) {
    size_t size = 0;
    n.log_size(prog, &size);
    std::string log(size, '\0');
    if (size > 0) n.log(prog, log.data());
    PACER_FAIL("NVRTC could not compile a fused kernel for sm_{} ({}):\n{}\n--- source ---\n{}", arch,
               n.error_string(r), log, source);
  }
  size_t size = 0;
  check(n.cubin_size(prog, &size), "nvrtcGetCUBINSize");
  out.cubin.resize(size);
  check(n.cubin(prog, out.cubin.data()), "nvrtcGetCUBIN");
  if (!out.cache_path.empty()) write_atomically(out.cache_path, out.cubin);
  return out;
}

}  // namespace pacer::ops::cuda
