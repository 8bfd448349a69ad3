#!/usr/bin/env bash
# The prefix-cache benchmark (README "Paged KV cache"): serves the random-weight 110M Llama twice
# from one triadd (deploy/bench-prefix.json: prefix caching on, and off), and sends each the
# same closed-loop load of prompts whose first SHARED tokens are identical (a common system
# prompt): `triad bench --prompt-tokens PROMPT_TOKENS --shared-prefix SHARED`. Prints both JSON
# reports and a summary: TTFT p50 and throughput with the cache over without it, measured in the
# same run. Then the same for classification: `triad bench --task entailment` (LM scoring of the
# three labels) whose premises start with the same SHARED tokens (a few-shot preamble);
# classifications/s and latency with the cache over without. Needs a build (scripts/test.sh
# or scripts/run.sh).
# Env: BUILD_DIR (build), PROMPT_TOKENS (512), SHARED (448), OUTPUT_TOKENS (16), CONCURRENCY (4),
# REQUESTS (16).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-serve.sh
BUILD_DIR=${BUILD_DIR:-build}
PORT=${PORT:-50073}
"$BUILD_DIR/model/triad-bench" --models llama-110m --dtypes float32 --write-only >/dev/null
start_triadd deploy/bench-prefix.json
run() {  # model [more triad bench flags]: one JSON report on one line
  local model=$1
  shift
  "$BUILD_DIR/client/triad" bench --server "127.0.0.1:$PORT" --model "$model" \
    --concurrency "${CONCURRENCY:-4}" --requests "${REQUESTS:-16}" \
    --prompt-tokens "${PROMPT_TOKENS:-512}" --shared-prefix "${SHARED:-448}" "$@" --json |
    tr -d '\n '
  echo
}
compare() {  # [triad bench flags]: the cache on, then off; prints both reports, one per line
  local on off
  on=$(run llama-110m "$@")
  off=$(run llama-110m-no-prefix-cache "$@")
  printf '%s\n%s\n' "$on" "$off"
}
generation=(--output-tokens "${OUTPUT_TOKENS:-16}")
for model in llama-110m llama-110m-no-prefix-cache; do run "$model" "${generation[@]}" >/dev/null; done  # warm-up
reports=$(compare "${generation[@]}")
echo "$reports"
echo "$reports" | python3 -c '
import json, sys
on, off = (json.loads(line) for line in sys.stdin)
print(json.dumps({"prompt_tokens": on["prompt_tokens"], "shared_prefix_tokens": on["shared_prefix_tokens"],
                  "ttft_p50_ms": [on["ttft_ms"]["p50"], off["ttft_ms"]["p50"]],
                  "ttft_p50_cached_over_uncached": on["ttft_ms"]["p50"] / off["ttft_ms"]["p50"],
                  "throughput_cached_over_uncached":
                      on["generated_tokens_per_s"] / off["generated_tokens_per_s"]}))
'
reports=$(compare --task entailment)
echo "$reports"
echo "$reports" | python3 -c '
import json, sys
on, off = (json.loads(line) for line in sys.stdin)
print(json.dumps({"task": on["task"], "shared_prefix_tokens": on["shared_prefix_tokens"],
                  "latency_p50_ms": [on["latency_ms"]["p50"], off["latency_ms"]["p50"]],
                  "classifications_per_s": [on["classifications_per_second"],
                                            off["classifications_per_second"]],
                  "throughput_cached_over_uncached":
                      on["classifications_per_second"] / off["classifications_per_second"]}))
'
