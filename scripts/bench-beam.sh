#!/usr/bin/env bash
# Beam-search serving benchmark (README "Continuous batching"): writes the random-weight
# 110M-Llama and T5-small checkpoints, starts triadd with deploy/bench-generate.json and runs
# `triad bench --num-beams 4` (unary, closed loop, random prompt ids) at concurrency 1 and 4 for
# each model, printing one JSON report per run and a summary. With BASELINE_TRIADD=path it runs
# the same against that triadd binary first (e.g. one built from an earlier commit), so the two
# are measured in the same session. Needs a build (scripts/test.sh or scripts/run.sh).
# Env: BUILD_DIR (build), PROMPT_TOKENS (32), OUTPUT_TOKENS (32), BEAMS (4), PORT (50073).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-serve.sh
BUILD_DIR=${BUILD_DIR:-build}
PROMPT=${PROMPT_TOKENS:-32}
OUTPUT=${OUTPUT_TOKENS:-32}
BEAMS=${BEAMS:-4}
PORT=${PORT:-50073}

"$BUILD_DIR/model/triad-bench" --models llama-110m,t5-small --dtypes float32 --write-only >/dev/null

run() {  # label model concurrency requests
  "$BUILD_DIR/client/triad" bench --server "127.0.0.1:$PORT" --model "$2" --concurrency "$3" \
    --requests "$4" --prompt-tokens "$PROMPT" --output-tokens "$OUTPUT" --num-beams "$BEAMS" \
    --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(json.dumps({"server": sys.argv[1], "model": r["model"], "concurrency": r["concurrency"],
                  "requests_ok": r["requests_ok"], "requests_per_s": r["requests_per_s"],
                  "generated_tokens_per_s": r["generated_tokens_per_s"],
                  "latency_ms": r["ttft_ms"]}))' "$1"
}
servers=()
[[ -n "${BASELINE_TRIADD:-}" ]] && servers+=("baseline=$BASELINE_TRIADD")
servers+=("current=$BUILD_DIR/server/triadd")
for entry in "${servers[@]}"; do
  label=${entry%%=*}
  TRIADD=${entry#*=} start_triadd deploy/bench-generate.json
  for model in llama-110m t5-small; do
    run "$label" "$model" 2 2 >/dev/null  # first-touch of the weights
    run "$label" "$model" 1 4
    run "$label" "$model" 4 8
  done
  stop_triadd
done
