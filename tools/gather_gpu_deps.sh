#!/usr/bin/env bash
# Copies into deps/ (git-ignored) what Pacer's build and tests need that the GPU machine
# lacks: fmt, doctest, nlohmann-json, zlib and libjpeg-turbo headers, CMake package configs, and the shared
# libraries (libfmt, libz, libjpeg, OpenBLAS and its Fortran runtime). Run it HERE, on the Debian
# machine with tools/setup.sh's packages; carry `deps` to the GPU machine, where
# tools/gpu_check.sh configures with -DPACER_DEPS_ROOT=$PWD/deps.
#
#   tools/gather_gpu_deps.sh            (from anywhere; rebuilds deps/ from scratch)
#
# Layout (a CMake prefix): include/, lib/ (libraries under their link and SONAME names, real
# files, no symbolic links), lib/cmake/{fmt,doctest}, share/cmake/nlohmann_json, and
# runtime/ (libgfortran, libquadmath: only put on LD_LIBRARY_PATH when the GPU machine has
# none). OpenBLAS (36 MiB) travels xz-compressed as lib/libopenblas.so.0.xz; gpu_check.sh
# unpacks it (python3's lzma, no xz needed) into lib/libopenblas.so.0 and lib/libopenblas.so.
# The package configs are written here, relative to their own folder, so the copy works
# wherever it lands.
set -euo pipefail
cd "$(dirname "$0")/.."
D=deps
MA=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)  # multiarch folder, x86_64-linux-gnu
L=/usr/lib/$MA
rm -rf "$D"
mkdir -p "$D/include" "$D/lib/cmake/fmt" "$D/lib/cmake/doctest" "$D/share/cmake/nlohmann_json" "$D/runtime"

need() { [[ -e $1 ]] || { echo "gather_gpu_deps: $1 missing (run tools/setup.sh)" >&2; exit 1; }; }
# real FILE DEST...: copies the file a link points to under each destination name.
real() {
  local src
  src=$(readlink -f "$1")
  need "$src"
  shift
  for d in "$@"; do cp "$src" "$d"; done
}

# --- headers -------------------------------------------------------------------------
need /usr/include/fmt/core.h
need /usr/include/doctest/doctest.h
need /usr/include/nlohmann/json.hpp
need /usr/include/zlib.h
cp -r /usr/include/fmt /usr/include/doctest /usr/include/nlohmann "$D/include/"
cp /usr/include/zlib.h /usr/include/zconf.h "$D/include/"
need /usr/include/jpeglib.h  # libjpeg-turbo (the data layer); jconfig.h lives in the multiarch folder
cp /usr/include/jpeglib.h /usr/include/jerror.h /usr/include/jmorecfg.h "/usr/include/$MA/jconfig.h" "$D/include/"
# OpenBLAS's cblas.h and its config (the pthread flavour, as Debian's default alternative).
OB_INC=/usr/include/$MA/openblas-pthread
need "$OB_INC/cblas.h"
cp "$OB_INC"/cblas.h "$OB_INC"/openblas_config.h "$D/include/"

# --- libraries -----------------------------------------------------------------------
fmt_so=$(readlink -f "$L/libfmt.so")                     # libfmt.so.9.1.0
fmt_soname=$(objdump -p "$fmt_so" | awk '/SONAME/ {print $2}')  # libfmt.so.9
fmt_version=$(basename "$fmt_so" | sed 's/^libfmt\.so\.//')
real "$L/libfmt.so" "$D/lib/$fmt_soname" "$D/lib/libfmt.so"
real "$L/libz.so" "$D/lib/libz.so.1" "$D/lib/libz.so"
jpeg_so=$(readlink -f "$L/libjpeg.so")                   # libjpeg.so.62.3.0 (libjpeg-turbo)
real "$L/libjpeg.so" "$D/lib/$(objdump -p "$jpeg_so" | awk '/SONAME/ {print $2}')" "$D/lib/libjpeg.so"
ob_so=$(readlink -f "$L/libopenblas.so.0")   # through Debian's alternatives
need "$ob_so"
python3 - "$ob_so" "$D/lib/libopenblas.so.0.xz" <<'EOF'
import lzma, sys
with open(sys.argv[1], "rb") as f, lzma.open(sys.argv[2], "wb", preset=6) as g:
    g.write(f.read())
EOF
# OpenBLAS's own needs besides libc/libm/libpthread (the GPU machine may have no gfortran).
for n in $(objdump -p "$ob_so" | awk '/NEEDED/ {print $2}'); do
  case $n in libgfortran.so.*|libquadmath.so.*) real "$L/$n" "$D/runtime/$n" ;; esac
done
real "$L/libquadmath.so.0" "$D/runtime/libquadmath.so.0"  # libgfortran's own need

# --- CMake package configs (relative to their folder) ---------------------------------
cat >"$D/lib/cmake/fmt/fmt-config.cmake" <<EOF
# fmt $fmt_version copied from Debian by tools/gather_gpu_deps.sh: the shared library.
get_filename_component(_fmt_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET fmt::fmt)
  add_library(fmt::fmt SHARED IMPORTED)
  set_target_properties(fmt::fmt PROPERTIES
    IMPORTED_LOCATION "\${_fmt_prefix}/lib/$fmt_soname"
    IMPORTED_SONAME "$fmt_soname"
    INTERFACE_INCLUDE_DIRECTORIES "\${_fmt_prefix}/include"
    INTERFACE_COMPILE_DEFINITIONS "FMT_SHARED")
endif()
if(NOT TARGET fmt::fmt-header-only)
  add_library(fmt::fmt-header-only INTERFACE IMPORTED)
  set_target_properties(fmt::fmt-header-only PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "\${_fmt_prefix}/include"
    INTERFACE_COMPILE_DEFINITIONS "FMT_HEADER_ONLY=1")
endif()
unset(_fmt_prefix)
EOF
# The version files Debian ships are generic (no paths); reuse them.
cp "$L/cmake/fmt/fmt-config-version.cmake" "$D/lib/cmake/fmt/"

cat >"$D/lib/cmake/doctest/doctestConfig.cmake" <<'EOF'
# doctest (header only) copied from Debian by tools/gather_gpu_deps.sh.
get_filename_component(_doctest_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET doctest::doctest)
  # include(doctest) finds doctest.cmake (doctest_discover_tests) beside this file.
  list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")
  add_library(doctest::doctest INTERFACE IMPORTED)
  set_target_properties(doctest::doctest PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_doctest_prefix}/include"
    INTERFACE_COMPILE_FEATURES "cxx_std_11")
endif()
unset(_doctest_prefix)
EOF
cp /usr/lib/cmake/doctest/doctestConfigVersion.cmake /usr/lib/cmake/doctest/doctest.cmake \
   /usr/lib/cmake/doctest/doctestAddTests.cmake "$D/lib/cmake/doctest/"

cat >"$D/share/cmake/nlohmann_json/nlohmann_jsonConfig.cmake" <<'EOF'
# nlohmann-json (header only) copied from Debian by tools/gather_gpu_deps.sh.
get_filename_component(_nlohmann_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET nlohmann_json::nlohmann_json)
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_nlohmann_prefix}/include"
    INTERFACE_COMPILE_FEATURES "cxx_std_11")
endif()
unset(_nlohmann_prefix)
EOF
cp /usr/share/cmake/nlohmann_json/nlohmann_jsonConfigVersion.cmake "$D/share/cmake/nlohmann_json/"

# Guard: nothing copied may point back at this machine's /usr.
if grep -rl "/usr/" "$D/lib/cmake" "$D/share/cmake"; then
  echo "gather_gpu_deps: a copied CMake file above names an absolute /usr path" >&2
  exit 1
fi

cat >"$D/MANIFEST.txt" <<EOF
Pacer deps for the GPU machine, gathered $(date -u +%Y-%m-%dT%H:%MZ) on $(. /etc/os-release && echo "$PRETTY_NAME")
fmt $fmt_version, doctest $(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")/\1/p' /usr/lib/cmake/doctest/doctestConfigVersion.cmake), \
nlohmann-json $(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")/\1/p' /usr/share/cmake/nlohmann_json/nlohmann_jsonConfigVersion.cmake), \
zlib $(sed -n 's/^#define ZLIB_VERSION "\(.*\)"/\1/p' /usr/include/zlib.h), libjpeg-turbo $(basename "$jpeg_so"), \
OpenBLAS $(basename "$ob_so")
EOF
(cd "$D" && find . -type f | sort | grep -v '^./include/\(nlohmann\|fmt\|doctest\)/' >>MANIFEST.txt)
echo "gather_gpu_deps: $(du -sh "$D" | cut -f1) in $D ($(find "$D" -type f | wc -l) files)"
size=$(du -sb "$D" | cut -f1)
if ((size > 40 * 1024 * 1024)); then
  echo "gather_gpu_deps: $D is over 40 MiB; the carried tree must stay under 64 MiB" >&2
  exit 1
fi
