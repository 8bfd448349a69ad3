#!/usr/bin/env bash
# Coverage-guided fuzzing of Triad's parsers of untrusted bytes (tests/fuzz/*_fuzz.cc):
# tokenizer.json and SentencePiece .model loading, the compiled charsmap, encode/decode of
# arbitrary text and ids on the real tokenizers, safetensors headers, config.json, triadd's
# config file, Classify items, the sampler chain's parameters and the RPCs' raw request bytes.
#
#   scripts/fuzz.sh [TARGET...]     (default: every target)
#
# Builds the targets with clang, libFuzzer, AddressSanitizer and UBSan in FUZZ_BUILD_DIR
# (build-fuzz), then runs each for FUZZ_SECONDS (60) starting from the committed corpus
# (tests/fuzz/corpus/TARGET, read only) plus a working corpus in FUZZ_BUILD_DIR/corpus/TARGET.
# A failed property check, crash, leak or sanitizer report leaves the input in
# FUZZ_BUILD_DIR/artifacts/ and makes the script exit 1; copy such an input into
# tests/fuzz/corpus/TARGET/ with the fix so that ctest replays it from then on.
# Installs what it needs first (scripts/setup.sh --fuzz: the build's packages plus clang and
# libclang-rt-14-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --fuzz
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
ALL=(tokenizer_encode tokenizer_json sentencepiece precompiled safetensors_header model_config
     server_config classify sampler wire)
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL[@]}")

sanitize="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS="$sanitize -fno-omit-frame-pointer" \
  -DTRIAD_FUZZ=ON -DTRIAD_BUILD_SERVER=ON -DTRIAD_WERROR=OFF >/dev/null
cmake --build "$BUILD" --target "${TARGETS[@]/#/fuzz_}"

mkdir -p "$BUILD/artifacts"
failed=()
for t in "${TARGETS[@]}"; do
  mkdir -p "$BUILD/corpus/$t"
  dict=()
  case $t in tokenizer_json | model_config | safetensors_header | server_config) dict=(-dict=tests/fuzz/json.dict) ;; esac
  echo "== fuzz_$t for ${SECONDS_PER_TARGET}s"
  if ! "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=4096 \
      -print_final_stats=1 "${dict[@]}" -artifact_prefix="$BUILD/artifacts/$t-" \
      "$BUILD/corpus/$t" "tests/fuzz/corpus/$t" 2>"$BUILD/$t.log"; then
    failed+=("$t")
    grep -E "ERROR|FUZZ_CHECK|SUMMARY|Test unit written" "$BUILD/$t.log" | head -20
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ +DONE" "$BUILD/$t.log" | tr '\n' ' '
  echo
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: failures in ${failed[*]} (inputs in $BUILD/artifacts/)"
  exit 1
fi
echo "fuzz: no failures in ${TARGETS[*]}"
