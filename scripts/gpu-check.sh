#!/usr/bin/env bash
# The GPU checks, for a session lent a device machine (../shared/device/README.md): run on the
# device from the repository root, with `carry: [".devkit"]` after ../shared/device/make-kit.sh
# (the kit supplies abseil, nlohmann-json and GoogleTest; the device has none of them):
#
#   OUT=$OUT scripts/gpu-check.sh
#
# Builds the model library and its GPU test against the device's CUDA LibTorch (gRPC is not
# needed: TRIAD_BUILD_SERVER=OFF), then runs model_gpu_test (every model fixture case on cuda
# in float32 and bfloat16, including candidate scoring and the GPT-1 heads) and the CPU
# fixture test for comparison, then triad-bench on cuda (SKIP_BENCH=1 leaves it out). Everything
# it prints goes to $OUT (default /tmp/gpu-check), so
# it comes back even when the command times out. Without CUDA the GPU tests skip.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
BUILD_DIR=${BUILD_DIR:-build-gpu}
mkdir -p "$OUT"
if [[ -f .devkit/use-kit.sh ]]; then
  # shellcheck disable=SC1091
  source .devkit/use-kit.sh >"$OUT/kit.log" 2>&1 || echo "kit: failed (see kit.log)" >>"$OUT/summary.txt"
fi
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)
{
  echo "date: $(date -u)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  echo "torch cmake prefix: ${TORCH_PREFIX:-<none: system LibTorch>}"
} >>"$OUT/summary.txt"
step() {  # name command...: runs it with output to $OUT/name.log, records the exit status
  local name=$1
  shift
  local start=$SECONDS
  "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc ($((SECONDS - start)) s)" >>"$OUT/summary.txt"
  return $rc
}
step configure cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTRIAD_BUILD_SERVER=OFF -DTRIAD_BUILD_TESTS=ON -DTRIAD_WERROR=OFF \
  ${TORCH_PREFIX:+-DCMAKE_PREFIX_PATH="$TORCH_PREFIX;${CMAKE_PREFIX_PATH:-}"} || exit 1
step build cmake --build "$BUILD_DIR" -j "$(nproc)" --target model_gpu_test model_test triad-bench || exit 1
step gpu_test "$BUILD_DIR/tests/model/model_gpu_test"
step cpu_fixture_test "$BUILD_DIR/tests/model/model_test" --gtest_filter='ModelFixtures.*'
grep -E "^\[(bf16|cuda|gpu)|worst|SKIPPED|PASSED|FAILED" "$OUT/gpu_test.log" >>"$OUT/summary.txt" 2>/dev/null
# The real shapes on the GPU (JSON in bench.log), time-boxed so the results above come back.
if [[ -z "${SKIP_BENCH:-}" ]]; then
  step bench timeout "${BENCH_SECONDS:-240}" "$BUILD_DIR/model/triad-bench" --device cuda \
    --models llama-110m,t5-small,tinyllama-1.1b --dtypes bfloat16,float16 --decode-steps 32 \
    --workdir "${BENCH_DIR:-/tmp/triad-bench}"
fi
cat "$OUT/summary.txt"
