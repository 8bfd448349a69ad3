#!/usr/bin/env bash
# The README's test command: installs the Debian packages, configures with warnings as errors,
# builds everything and runs every test that can run on this machine (GPU tests skip
# themselves without CUDA). Usage: scripts/test.sh [extra ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${TRIAD_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRIAD_WERROR=ON
cmake --build "$BUILD_DIR" -j "$(nproc)"
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 1200 -j "$(nproc)" "$@"
