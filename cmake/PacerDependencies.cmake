# Finds Pacer's dependencies. Debian packages are found where apt puts them; elsewhere
# (the GPU machine) PACER_DEPS_ROOT or CMAKE_PREFIX_PATH points at copies.

find_package(fmt REQUIRED)
find_package(Threads REQUIRED)

# OpenBLAS: Debian ships no CMake config that works from a copied folder, so find it by hand.
find_path(PACER_CBLAS_INCLUDE_DIR NAMES cblas.h
          PATHS ${PACER_DEPS_ROOT}/include /usr/include/x86_64-linux-gnu/openblas-pthread
                /usr/include/x86_64-linux-gnu /usr/include/openblas
          NO_DEFAULT_PATH)
find_path(PACER_CBLAS_INCLUDE_DIR NAMES cblas.h PATH_SUFFIXES openblas)
find_library(PACER_OPENBLAS_LIBRARY NAMES openblas PATHS ${PACER_DEPS_ROOT}/lib)
if(NOT PACER_CBLAS_INCLUDE_DIR OR NOT PACER_OPENBLAS_LIBRARY)
  message(FATAL_ERROR "OpenBLAS not found (cblas.h: '${PACER_CBLAS_INCLUDE_DIR}', "
                      "libopenblas: '${PACER_OPENBLAS_LIBRARY}'). Run tools/setup.sh, or set PACER_DEPS_ROOT.")
endif()
add_library(pacer_openblas INTERFACE)
target_include_directories(pacer_openblas SYSTEM INTERFACE "${PACER_CBLAS_INCLUDE_DIR}")
target_link_libraries(pacer_openblas INTERFACE "${PACER_OPENBLAS_LIBRARY}")
message(STATUS "Pacer: OpenBLAS ${PACER_OPENBLAS_LIBRARY} (headers ${PACER_CBLAS_INCLUDE_DIR})")

if(PACER_BUILD_TESTS)
  find_package(doctest REQUIRED)
endif()

# CUDA: AUTO turns it on when a CUDA compiler is found.
set(PACER_HAVE_CUDA OFF)
if(NOT PACER_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 90)
    endif()
    # CMake 3.25 does not know nvcc's C++20 flag; device code needs only C++17.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(PACER_HAVE_CUDA ON)
  elseif(PACER_CUDA STREQUAL "ON")
    message(FATAL_ERROR "PACER_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER)")
  endif()
endif()
message(STATUS "Pacer: CUDA backend ${PACER_HAVE_CUDA}")
