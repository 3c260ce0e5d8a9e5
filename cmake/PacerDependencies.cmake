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
    enable_language(CUDA)
    # CMake 3.25 does not know nvcc's C++20 flag (nvcc 12+ has it): tell it.
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(PACER_HAVE_CUDA ON)
  elseif(PACER_CUDA STREQUAL "ON")
    message(FATAL_ERROR "PACER_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER)")
  endif()
endif()
message(STATUS "Pacer: CUDA backend ${PACER_HAVE_CUDA}")

if(PACER_HAVE_CUDA)
  # fmt 9 turns its constexpr support off under nvcc, which breaks its C++20 consteval
  # format strings; nvcc 12+ handles them, so it is switched back on.
  set(PACER_CUDA_FLAGS -DFMT_USE_CONSTEXPR=1 --expt-relaxed-constexpr --extended-lambda -Xcompiler=-Wall,-Wextra,-Wno-restrict)
  if(PACER_WERROR)
    list(APPEND PACER_CUDA_FLAGS -Werror=all-warnings)
  endif()

  # cuBLAS, cuBLASLt, cuDNN: from the toolkit, or (GPU machines with PyTorch's wheels) from
  # the folders in PACER_CUDA_EXTRA_ROOTS, e.g. site-packages/nvidia/cudnn. The wheels ship
  # only versioned .so files, hence the explicit versioned names.
  set(PACER_CUDA_EXTRA_ROOTS "" CACHE STRING "Folders with include/ and lib/ holding cuBLAS and cuDNN")
  function(pacer_cuda_library target header)
    cmake_parse_arguments(ARG "" "" "NAMES" ${ARGN})
    find_path(${target}_INCLUDE_DIR ${header} HINTS ${PACER_CUDA_EXTRA_ROOTS} ${CUDAToolkit_INCLUDE_DIRS}
              PATH_SUFFIXES include)
    find_library(${target}_LIBRARY NAMES ${ARG_NAMES} NAMES_PER_DIR HINTS ${PACER_CUDA_EXTRA_ROOTS} ${CUDAToolkit_LIBRARY_DIR}
                 PATH_SUFFIXES lib lib64)
    if(NOT ${target}_INCLUDE_DIR OR NOT ${target}_LIBRARY)
      message(FATAL_ERROR "${target}: ${header} or library (${ARG_NAMES}) not found; "
                          "set PACER_CUDA_EXTRA_ROOTS to the folders holding them")
    endif()
    add_library(${target} INTERFACE)
    target_include_directories(${target} SYSTEM INTERFACE "${${target}_INCLUDE_DIR}")
    target_link_libraries(${target} INTERFACE "${${target}_LIBRARY}")
    message(STATUS "Pacer: ${target} ${${target}_LIBRARY}")
  endfunction()
  pacer_cuda_library(pacer_cublas cublas_v2.h NAMES cublas libcublas.so.13 libcublas.so.12)
  pacer_cuda_library(pacer_cublaslt cublasLt.h NAMES cublasLt libcublasLt.so.13 libcublasLt.so.12)
  pacer_cuda_library(pacer_cudnn cudnn.h NAMES cudnn libcudnn.so.9)
  target_link_libraries(pacer_cublas INTERFACE pacer_cublaslt)
endif()
