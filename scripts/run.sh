#!/usr/bin/env bash
# The README's run command: installs the Debian packages, builds, and runs the main job on the
# bundled default model. Until the daemon lands, the main job is `triad-infer` generating from
# the bundled tiny Llama checkpoint (random weights: the text is noise). Extra arguments go to
# triad-infer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${TRIAD_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j "$(nproc)" --target triad-infer
if [[ $# -eq 0 ]]; then
  set -- --model tests/data/models/llama-tiny --tokenizer tests/data/tokenizers/llama-tiny \
         --prompt "The license grants you" --max-new-tokens 16
fi
exec "$BUILD_DIR/model/triad-infer" "$@"
