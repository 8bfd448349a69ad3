#!/usr/bin/env bash
# The Classify benchmark (README "Classification"): writes the random-weight GPT-1 117M
# sequence-classification and T5-small checkpoints (build/model/triad-bench --write-only),
# starts triadd with deploy/bench-classify.json on a free port, and runs `triad bench` for
# GPT-1 entailment and T5-small label scoring at concurrency 1 and 32. Prints one JSON report
# per run (one line each) and the batched/solo throughput ratios. Needs a build (scripts/test.sh
# or scripts/run.sh). Env: BUILD_DIR (build), SEGMENT_TOKENS (16), REQUESTS_SOLO (16),
# REQUESTS_BATCHED (256), CONFIG (deploy/bench-classify.json; scripts/gpu-check.sh passes a copy
# with the models on cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-serve.sh
BUILD_DIR=${BUILD_DIR:-build}
SEGMENT=${SEGMENT_TOKENS:-16}
SOLO=${REQUESTS_SOLO:-16}
BATCHED=${REQUESTS_BATCHED:-256}
PORT=${PORT:-50071}

"$BUILD_DIR/model/triad-bench" --models gpt1-cls,t5-small --dtypes float32 --write-only >/dev/null
start_triadd "${CONFIG:-deploy/bench-classify.json}"

run() {  # model task concurrency requests
  "$BUILD_DIR/client/triad" bench --server "127.0.0.1:$PORT" --model "$1" --task "$2" \
    --concurrency "$3" --requests "$4" --prompt-tokens "$SEGMENT" --json | tr -d '\n '
  echo
}
declare -A rate
for spec in "gpt1-cls entailment" "t5-small entailment"; do
  set -- $spec
  warm=$(run "$1" "$2" 4 8)  # first-touch of the weights, allocator warm-up
  solo=$(run "$1" "$2" 1 "$SOLO")
  batched=$(run "$1" "$2" 32 "$BATCHED")
  echo "$solo"
  echo "$batched"
  s=$(echo "$solo" | python3 -c 'import json,sys;print(json.load(sys.stdin)["classifications_per_second"])')
  b=$(echo "$batched" | python3 -c 'import json,sys;print(json.load(sys.stdin)["classifications_per_second"])')
  python3 -c "print('{\"model\":\"$1\",\"task\":\"$2\",\"solo_per_s\":%.3f,\"batched_per_s\":%.3f,\"ratio\":%.2f}' % ($s, $b, $b / $s))"
done
