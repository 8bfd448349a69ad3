#!/usr/bin/env bash
# The generation serving benchmark (README "triad (client)"): writes the random-weight 110M-Llama
# and T5-small checkpoints (build/model/triad-bench --write-only), starts triadd with
# deploy/bench-generate.json on a free port, and runs `triad bench` (closed loop, random prompt
# ids, fixed output length) at concurrency 1, 4 and 16 for each. Prints one JSON report per run
# and a summary per model: throughput at 16 / at 1, and the p99 time to first token at 16
# (all requests, and after each client's opening request) against the median TTFT at
# concurrency 1 (one prompt's prefill alone). Each pass then runs concurrency 16 again with the
# clients' starts ramped (`triad bench --ramp-up`) over one request's duration at concurrency 16
# (the first run's wall time over ROUNDS), so that the opening requests arrive as far apart as
# the later ones do and the p99 counts every request without a simultaneous opening burst
# ("ramped_*" in the summary). Needs a build (scripts/test.sh or scripts/run.sh).
# Env: BUILD_DIR (build), CONFIG (deploy/bench-generate.json; scripts/gpu-check.sh passes a copy
# with the models on cuda), PROMPT_TOKENS (64), OUTPUT_TOKENS (64), ROUNDS (4 requests per client),
# SPREAD (0: every output OUTPUT_TOKENS long; e.g. 0.5 draws lengths from [32, 64] so the
# closed-loop clients fall out of lockstep), PASSES (1: how many times to run concurrency 1, 4
# and 16 in turn; the summary gives each pass's ratios and their medians, so a shared machine's
# drift between passes shows instead of skewing one ratio), PREFILL_CHUNK (unset: the config's
# prefill_chunk_tokens; N: both models' per-step prompt-token budget set to N in a copy of the
# config beside it, deploy/*.tmp.json; README "triad (client)" has the trade-off measured),
# ADMISSION_WINDOW_MS and REFILL_WINDOW_MS (unset: the config's admission_window_ms and
# refill_window_ms; N: both models' set to N the same way), RAMP (1: the ramped run; 0: none),
# DTYPE (float32; bfloat16 or float16: both models' checkpoints written and served in it, through
# a copy of the config as above; the summaries name it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-serve.sh
BUILD_DIR=${BUILD_DIR:-build}
PROMPT=${PROMPT_TOKENS:-64}
OUTPUT=${OUTPUT_TOKENS:-64}
ROUNDS=${ROUNDS:-4}
SPREAD=${SPREAD:-0}
PASSES=${PASSES:-1}
RAMP=${RAMP:-1}
PORT=${PORT:-50072}
DTYPE=${DTYPE:-float32}

"$BUILD_DIR/model/triad-bench" --models llama-110m,t5-small --dtypes "$DTYPE" --write-only >/dev/null
CONFIG=${CONFIG:-deploy/bench-generate.json}
# Sets both models' KEY to VALUE in a copy of $CONFIG beside it (deploy/*.tmp.json), which
# becomes $CONFIG.
override() {  # key value
  local base copy
  base=$(basename "$CONFIG" .json)
  copy="$(dirname "$CONFIG")/${base%.tmp}-$1-$2.tmp.json"
  sed -E "s/\"$1\": *[0-9]+/\"$1\": $2/" "$CONFIG" >"$copy"
  grep -q "\"$1\": $2" "$copy" || { echo "bench-generate.sh: no \"$1\" in $CONFIG" >&2; exit 1; }
  CONFIG=$copy
}
if [[ $DTYPE != float32 ]]; then  # the checkpoints triad-bench wrote for DTYPE, served in it
  copy="$(dirname "$CONFIG")/$(basename "$CONFIG" .json)-$DTYPE.tmp.json"
  sed -E "s/-float32\"/-$DTYPE\"/; s/\"dtype\": *\"float32\"/\"dtype\": \"$DTYPE\"/" "$CONFIG" >"$copy"
  grep -q "\"dtype\": \"$DTYPE\"" "$copy" || { echo "bench-generate.sh: no float32 dtype in $CONFIG" >&2; exit 1; }
  CONFIG=$copy
fi
[[ -z "${PREFILL_CHUNK:-}" ]] || override prefill_chunk_tokens "$PREFILL_CHUNK"
[[ -z "${ADMISSION_WINDOW_MS:-}" ]] || override admission_window_ms "$ADMISSION_WINDOW_MS"
[[ -z "${REFILL_WINDOW_MS:-}" ]] || override refill_window_ms "$REFILL_WINDOW_MS"
start_triadd "$CONFIG"

# Every run draws its prompts from its own seed: the client's workers derive their prompts from
# the seed and their index, so runs sharing a seed would repeat prompts and Llama's prefix
# cache would skip their prefill.
run() {  # model concurrency requests seed [ramp-up seconds]
  "$BUILD_DIR/client/triad" bench --server "127.0.0.1:$PORT" --model "$1" --concurrency "$2" \
    --requests "$3" --prompt-tokens "$PROMPT" --output-tokens "$OUTPUT" --output-spread "$SPREAD" \
    --seed "$4" --ramp-up "${5:-0}" --json | tr -d '\n '
  echo
}
for model in llama-110m t5-small; do
  run "$model" 4 8 999 >/dev/null  # first-touch of the weights, allocator warm-up
  reports=()
  for pass in $(seq 1 "$PASSES"); do
    for c in 1 4 16; do
      reports+=("$(run "$model" "$c" $((ROUNDS * c > 8 ? ROUNDS * c : 8)) $((pass * 100 + c)))")
      echo "${reports[-1]}"
    done
    if [[ $RAMP == 1 ]]; then
      # One request's duration at concurrency 16: each client ran ROUNDS of them in a row.
      ramp=$(echo "${reports[-1]}" | python3 -c "import json,sys; print(json.load(sys.stdin)['wall_seconds'] / $ROUNDS)")
      reports+=("$(run "$model" 16 $((ROUNDS * 16)) $((pass * 100 + 17)) "$ramp")")
      echo "${reports[-1]}"
    fi
  done
  printf '%s\n' "${reports[@]}" | python3 -c '
import json, statistics, sys
r = [json.loads(line) for line in sys.stdin]
size = 4 if sys.argv[2] == "1" else 3
passes = [r[i:i + size] for i in range(0, len(r), size)]
def summary(p):
    one, many = p[0], p[2]
    prefill = one["ttft_ms"]["p50"]
    s = {"tokens_per_s": [x["generated_tokens_per_s"] for x in p[:3]],
         "throughput_16_over_1": many["generated_tokens_per_s"] / one["generated_tokens_per_s"],
         "ttft_1_p50_ms": prefill,
         "ttft_16_p99_over_prefill": many["ttft_ms"]["p99"] / prefill,
         "steady_ttft_16_p99_over_prefill": many["steady_ttft_ms"]["p99"] / prefill}
    if size == 4:
        ramped = p[3]
        s.update({"ramped_ramp_up_seconds": ramped["ramp_up_seconds"],
                  "ramped_throughput_16_over_1":
                      ramped["generated_tokens_per_s"] / one["generated_tokens_per_s"],
                  "ramped_ttft_16_p99_over_prefill": ramped["ttft_ms"]["p99"] / prefill})
    return s
each = [summary(p) for p in passes]
out = {"model": sys.argv[1], "dtype": sys.argv[3]}
if len(each) == 1:
    out.update(each[0])
else:
    for key in each[0]:
        if key != "tokens_per_s":
            out[key] = statistics.median(e[key] for e in each)
    out["passes"] = each
print(json.dumps(out))
' "$model" "$RAMP" "$DTYPE"
done
