# Shared setup of the compare_*.sh scripts (sourced): repository root, the thread count both
# sides get, the OpenBLAS tuning variables unset on both sides (both link the same
# libopenblas, so an override on one side would compare environments, not code), a scratch
# folder, and the date / machine / commit columns of the RESULTS.md rows.
cd "$(dirname "$0")/.."
THREADS=2  # the cores of the machine these numbers are for
CLEAN_ENV=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
date=$(date -u +%Y-%m-%d)
machine=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
commit=$(git rev-parse --short HEAD)
