#!/usr/bin/env bash
# The README's run command: installs the Debian packages, builds, and runs the main job: the
# triadd daemon serving the bundled tiny models (deploy/triad.json: llama-tiny, t5-tiny,
# gpt1-tiny and gpt1-tiny-cls (a classification head: Classify only) with their tokenizers;
# random weights, so generated text and labels are noise) on
# 127.0.0.1:50051 until SIGINT/SIGTERM. Extra arguments go to triadd (e.g. --listen 0.0.0.0:50051).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${TRIAD_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j "$(nproc)" --target triadd triad-infer
exec "$BUILD_DIR/server/triadd" --config deploy/triad.json "$@"
