// Entry point of the GPU suites (CTest label `gpu`). Without a visible CUDA device (or
// without the CUDA backend) every test exits with status 77, which CTest reports as
// skipped, after saying why. Listing the tests (doctest discovery at build time) always works.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>

#include "core/cuda/runtime.h"

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing = listing || std::strstr(argv[i], "list-test") != nullptr;
  if (!listing && !pacer::cuda::is_available()) {
    std::printf("SKIPPED: %s\n", pacer::cuda::is_built() ? "no CUDA device is visible"
                                                           : "this Pacer was built without its CUDA backend");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
