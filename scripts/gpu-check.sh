#!/usr/bin/env bash
# The GPU checks, for a session lent a device machine (../shared/device/README.md): run on the
# device from the repository root, with `carry: [".devkit"]` after ../shared/device/make-kit.sh
# and scripts/gpu-kit-extra.sh (the kit supplies gRPC, Protobuf, abseil, prometheus-cpp,
# nlohmann-json and GoogleTest, the extra PCRE2, ICU and utf8proc; the device has none of them):
#
#   OUT=$OUT scripts/gpu-check.sh
#
# In order of value, each step time-boxed so a hang cannot eat the rest:
#  1. builds the model library, its tests and triad-bench against the device's CUDA LibTorch
#     and runs model_gpu_test (every model fixture case on cuda in float32 and bfloat16, ragged
#     chunked batches and forks against each sequence alone);
#  2. builds triadd, the client and the server tests (when the kit works; SERVER=OFF skips) and
#     runs scheduler_test, triadd_test (one call per suite) and classify_e2e_test with
#     TRIAD_TEST_DEVICE=cuda: the scheduler, KV pool, prefix cache, beam search and the real
#     daemon (generation and classification) with every model on the GPU, decode steps from
#     CUDA graphs (the default there); the Triadd suite once more with TRIAD_TEST_CUDA_GRAPHS=0
#     (decode steps run eagerly);
#  3. scripts/bench-generate.sh and scripts/bench-classify.sh with the models on cuda in
#     bfloat16 (issues 4 and 5's serving targets; bench-generate three times: as configured,
#     with "cuda_graphs": false (the eager baseline), and with a 1024-token prompt budget per
#     step and a 2 ms admission window), then triad-bench on cuda (the real shapes,
#     decode_graph* and arrival16 included; SKIP_BENCH=1 leaves all of them out).
# Everything goes to $OUT (default /tmp/gpu-check): summary.txt, build.log, one log per test
# binary and bench.log.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
BUILD_DIR=${BUILD_DIR:-build-gpu}
SERVER=${SERVER:-ON}
mkdir -p "$OUT"
if [[ -f .devkit/use-kit.sh ]]; then
  # shellcheck disable=SC1091
  source .devkit/use-kit.sh >"$OUT/build.log" 2>&1 || { echo "kit: failed (see build.log)" >>"$OUT/summary.txt"; SERVER=OFF; }
else
  SERVER=OFF
fi
# The tokenizer's libraries (PCRE2, ICU, utf8proc), which the kit leaves out: headers, .pc files
# and shared libraries from Debian's packages (scripts/gpu-kit-extra.sh makes the archive).
if [[ -f .devkit/extra.tar.xz && -n "${DEVKIT:-}" ]]; then
  tar -C "${DEVKIT%/usr}" -xJf .devkit/extra.tar.xz
  # Debian's .pc files name /usr (re2.pc its libdir and includedir too): point them at the kit.
  sed -i -E "s#^((prefix|exec_prefix|libdir|includedir) *= *)/usr(/|\$)#\1$DEVKIT\3#" \
    "$DEVKIT"/lib/x86_64-linux-gnu/pkgconfig/*.pc
  export PKG_CONFIG_PATH=$DEVKIT/lib/x86_64-linux-gnu/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
fi
[[ -d /usr/local/cuda/bin ]] && export PATH=$PATH:/usr/local/cuda/bin
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)
{
  echo "date: $(date -u)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  echo "torch cmake prefix: ${TORCH_PREFIX:-<none: system LibTorch>}"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc), avx512f: $(grep -c avx512f /proc/cpuinfo)"
} >>"$OUT/summary.txt"
step() {  # name log seconds command...: output appended to $OUT/log.log (at most 8 files come
  local name=$1 log=$2 limit=$3  # back from a device call), records exit status and time
  shift 3
  local start=$SECONDS
  echo "=== $name: $*" >>"$OUT/$log.log"
  timeout "$limit" "$@" >>"$OUT/$log.log" 2>&1
  local rc=$?
  echo "$name: exit $rc ($((SECONDS - start)) s)" >>"$OUT/summary.txt"
  return $rc
}
configure=(cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRIAD_BUILD_TESTS=ON \
  -DTRIAD_WERROR=OFF ${TORCH_PREFIX:+-DCMAKE_PREFIX_PATH="$TORCH_PREFIX;${CMAKE_PREFIX_PATH:-}"})
if ! step configure build 120 "${configure[@]}" -DTRIAD_BUILD_SERVER="$SERVER"; then
  [[ $SERVER == ON ]] || exit 1
  SERVER=OFF
  rm -rf "$BUILD_DIR"
  step configure_model_only build 120 "${configure[@]}" -DTRIAD_BUILD_SERVER=OFF || exit 1
fi
build_model=(cmake --build "$BUILD_DIR" -j "$(nproc)" --target model_gpu_test triad-bench)
if ! step build_model build 300 "${build_model[@]}"; then
  # The decode graphs (model/decode_graph.cc) are the CUDA-only code that has never been built
  # against a CUDA LibTorch: without them the rest still builds and runs.
  step configure_no_graphs build 120 "${configure[@]}" -DTRIAD_BUILD_SERVER="$SERVER" \
    -DTRIAD_CUDA_GRAPHS=OFF || exit 1
  step build_model_no_graphs build 300 "${build_model[@]}" || exit 1
fi
step gpu_test gpu_test 120 "$BUILD_DIR/tests/model/model_gpu_test"
grep -E "^\[(bf16|cuda|gpu)|worst|SKIPPED|PASSED|FAILED" "$OUT/gpu_test.log" >>"$OUT/summary.txt" 2>/dev/null

if [[ $SERVER == ON ]] && ! step build_server build 300 cmake --build "$BUILD_DIR" -j "$(nproc)" \
     --target triadd triad scheduler_test triadd_test classify_e2e_test; then
  SERVER=OFF
fi
COUNTS='^\[  (PASSED|FAILED)  \] [0-9]+ test|^\[  FAILED  \] .* \([0-9]+ ms\)$'  # totals, failures
if [[ $SERVER == ON ]]; then
  # The decode-graph test on its own: a crash in graph capture or replay should not take the
  # other scheduler tests' results with it.
  step scheduler_test_cuda scheduler_test_cuda 150 env TRIAD_TEST_DEVICE=cuda \
    "$BUILD_DIR/tests/server/scheduler_test" --gtest_filter=-SchedulerTest.DecodeGraphsKeepEachSoloOutput
  step scheduler_test_cuda_graphs scheduler_test_cuda 60 env TRIAD_TEST_DEVICE=cuda \
    "$BUILD_DIR/tests/server/scheduler_test" --gtest_filter=SchedulerTest.DecodeGraphsKeepEachSoloOutput
  grep -E "$COUNTS" "$OUT/scheduler_test_cuda.log" >>"$OUT/summary.txt"
  # Fail-fast: a triadd that cannot start on cuda would otherwise cost every test its deadline.
  # One call per suite: session 9's run died of SIGSEGV after the Triadd suite, before the
  # TriaddLoading one; a crash now prints its stack (tests/test_main.cc) into the log.
  for suite in Triadd TriaddLoading TriaddRequestLog; do
    step "triadd_test_cuda_$suite" triadd_test_cuda 150 env TRIAD_TEST_DEVICE=cuda \
      "$BUILD_DIR/tests/server/triadd_test" --gtest_fail_fast --gtest_filter="$suite.*"
  done
  # The Triadd suite again with decode steps run eagerly ("cuda_graphs": false in its configs):
  # greedy equal to the fixtures, 32 concurrent clients each with its solo output, beams...
  step triadd_test_cuda_eager triadd_test_cuda 150 env TRIAD_TEST_DEVICE=cuda \
    TRIAD_TEST_CUDA_GRAPHS=0 "$BUILD_DIR/tests/server/triadd_test" --gtest_fail_fast \
    --gtest_filter="Triadd.*"
  grep -E "$COUNTS|SIGSEGV|\*\*\* " "$OUT/triadd_test_cuda.log" >>"$OUT/summary.txt"
  # Classify end to end through triadd with the models on cuda (issue 5's path on the GPU).
  step classify_e2e_cuda classify_e2e_cuda 150 env TRIAD_TEST_DEVICE=cuda \
    "$BUILD_DIR/tests/server/classify_e2e_test" --gtest_fail_fast
  grep -E "$COUNTS" "$OUT/classify_e2e_cuda.log" >>"$OUT/summary.txt"
fi

# deploy/NAME.json with its models on cuda in bfloat16 and a prefill budget of 256 tokens per
# step (a GPU prefills 256 tokens in about the time of 64, so batching arrivals costs their TTFT
# little there; the CPU config's 64 spreads them over steps) -> deploy/NAME-cuda.json; with a
# second argument `eager`, decode steps without CUDA graphs -> deploy/NAME-eager-cuda.json
cuda_config() {
  local out="deploy/$1-cuda.json" extra=""
  if [[ ${2:-} == eager ]]; then out="deploy/$1-eager-cuda.json"; extra=', "cuda_graphs": false'; fi
  sed -e 's/"device": "cpu"/"device": "cuda"/' -e 's/"dtype": "float32"/"dtype": "bfloat16"/' \
    -E -e "s/\"prefill_chunk_tokens\": *[0-9]+/\"prefill_chunk_tokens\": 256$extra/" \
    "deploy/$1.json" >"$out"
}
if [[ -z "${SKIP_BENCH:-}" ]]; then
  if [[ $SERVER == ON ]]; then
    cuda_config bench-generate
    step bench_generate_cuda bench 120 env BUILD_DIR="$BUILD_DIR" CONFIG=deploy/bench-generate-cuda.json \
      scripts/bench-generate.sh
    grep -h '^{"model": ' "$OUT/bench.log" | tail -2 >>"$OUT/summary.txt"  # both summaries
    grep -h "CUDA graph" /tmp/triad-bench-generate-cuda.log >>"$OUT/summary.txt" 2>/dev/null
    # The same with decode steps run eagerly (the models' "cuda_graphs": false), the baseline.
    cuda_config bench-generate eager
    step bench_generate_eager_cuda bench 120 env BUILD_DIR="$BUILD_DIR" \
      CONFIG=deploy/bench-generate-eager-cuda.json scripts/bench-generate.sh
    grep -h '^{"model": ' "$OUT/bench.log" | tail -2 >>"$OUT/summary.txt"  # both summaries
    # With graphs, a prompt budget of 1024 tokens per step and a 2 ms admission window: at 256,
    # the closed loop's clusters of arrivals (clients that finished in the same step) prefill
    # over several steps, each waiting for the one before, while a GPU prefills 1024 tokens in
    # about the time of 64; the window starts a burst at an idle model in one step.
    step bench_generate_chunk1024_cuda bench 120 env BUILD_DIR="$BUILD_DIR" PREFILL_CHUNK=1024 \
      ADMISSION_WINDOW_MS=2 CONFIG=deploy/bench-generate-cuda.json scripts/bench-generate.sh
    grep -h '^{"model": ' "$OUT/bench.log" | tail -2 >>"$OUT/summary.txt"  # both summaries
    cuda_config bench-classify
    step bench_classify_cuda bench 120 env BUILD_DIR="$BUILD_DIR" CONFIG=deploy/bench-classify-cuda.json \
      scripts/bench-classify.sh
    grep '"ratio"' "$OUT/bench.log" | tail -2 >>"$OUT/summary.txt"
  fi
  step bench bench 180 "$BUILD_DIR/model/triad-bench" --device cuda \
    --models gpt1,llama-110m,t5-small,tinyllama-1.1b --dtypes float32,bfloat16 --decode-steps 32 \
    --workdir /tmp/triad-bench
fi
cat "$OUT/summary.txt"
