#!/usr/bin/env bash
# The triad CLI against a real triadd (label integration): health, models, generate (stream and
# unary give the same text), classify, tokenize, bench --json (generation and classification; the
# server-reported prompt and cached tokens), a bad request's exit status, and SIGTERM
# stopping the daemon with exit 0. Usage: cli_test.sh TRIADD TRIAD DATA_DIR
set -euo pipefail
TRIADD=$1 TRIAD=$2 DATA=$(cd "$3" && pwd)
PORT=$((20000 + RANDOM % 30000))
WORK=$(mktemp -d)
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
cat > "$WORK/triad.json" <<JSON
{"listen": "127.0.0.1:$PORT", "metrics_port": 0, "threads": 1, "models": [
  {"name": "llama", "path": "$DATA/models/llama-tiny", "tokenizer": "$DATA/tokenizers/llama-tiny"}]}
JSON
"$TRIADD" --config "$WORK/triad.json" 2> "$WORK/triadd.log" &
PID=$!
S="--server 127.0.0.1:$PORT"
for _ in $(seq 600); do
  if "$TRIAD" health $S > /dev/null 2>&1; then break; fi
  sleep 0.1
done
fail() { echo "FAIL: $*"; cat "$WORK/triadd.log"; exit 1; }
[[ $("$TRIAD" health $S) == SERVING ]] || fail "health"
"$TRIAD" models $S | grep -q "^llama	MODEL_FAMILY_LLAMA	MODEL_STATE_READY" || fail "models"
streamed=$("$TRIAD" generate $S --model llama --prompt "The license" --max-new-tokens 8 --temperature 0 2>/dev/null)
unary=$("$TRIAD" generate $S --model llama --prompt "The license" --max-new-tokens 8 --temperature 0 --no-stream 2>/dev/null)
[[ "$streamed" == "$unary" ]] || fail "stream '$streamed' != unary '$unary'"
"$TRIAD" tokenize $S --model llama --text "The license" | head -1 | grep -q "^1	<s>" || fail "tokenize"
classified=$("$TRIAD" classify $S --model llama --task multiple_choice --context "The weather is" --choice " sunny" --choice " a cat" --json)
echo "$classified" | grep -q '"labels"' || fail "classify: $classified"
echo "$classified" | grep -q '"label": " sunny"\|"label": " a cat"' || fail "classify label: $classified"
creport=$("$TRIAD" bench $S --model llama --task entailment --concurrency 4 --requests 8 --prompt-tokens 8 --json)
echo "$creport" | grep -q '"requests_ok": 8' || fail "classify bench: $creport"
echo "$creport" | grep -q '"classifications_per_second"' || fail "classify bench: $creport"
report=$("$TRIAD" bench $S --model llama --concurrency 4 --requests 8 --prompt-tokens 8 --output-tokens 4 --json)
echo "$report" | grep -q '"requests_ok": 8' || fail "bench: $report"
echo "$report" | grep -q '"ttft_ms"' || fail "bench percentiles: $report"
# 8 requests on 4 workers: 4 openings, 4 after them.
echo "$report" | tr -d ' \n' | grep -q '"steady_ttft_ms":{"count":4' || fail "bench steady TTFT: $report"
# The server's usage: 8 prompts of 8 ids; every request has 4 tokens, so a TPOT, a latency and
# a queue time each.
flat=$(echo "$report" | tr -d ' \n')
for key in '"total_prompt_tokens":64' '"tpot_ms":{"count":8' '"latency_ms":{"count":8' \
    '"server_queue_ms":{"count":8'; do
  echo "$flat" | grep -q "$key" || fail "bench $key: $report"
done
table=$("$TRIAD" bench $S --model llama --concurrency 2 --requests 2 --prompt-tokens 8 --output-tokens 2)
echo "$table" | grep -q "^tokens/s: .* generated .* prompt (.* from the prefix cache) .* total" &&
  echo "$table" | grep -q "^per output token" || fail "bench table: $table"
# Output lengths drawn from [4, 8]: 8 requests generate 32..64 tokens, all 8 each only by a
# 1-in-390625 chance.
spread=$("$TRIAD" bench $S --model llama --concurrency 4 --requests 8 --prompt-tokens 8 --output-tokens 8 --output-spread 0.5 --json | tr -d ' \n')
generated=$(echo "$spread" | sed -n 's/.*"generated_tokens":\([0-9]*\).*/\1/p')
[[ -n "$generated" && $generated -ge 32 && $generated -lt 64 ]] || fail "bench --output-spread: $spread"
# --ramp-up 0.9 on 4 workers: the last one starts 0.675 s in (4 one-token requests alone take
# tens of milliseconds here).
ramp=$("$TRIAD" bench $S --model llama --concurrency 4 --requests 4 --prompt-tokens 8 --output-tokens 1 --ramp-up 0.9 --json | tr -d ' \n')
wall=$(echo "$ramp" | sed -n 's/.*"wall_seconds":\([0-9.e-]*\).*/\1/p')
echo "$ramp" | grep -q '"requests_ok":4' && echo "$ramp" | grep -q '"ramp_up_seconds":0.9' &&
  awk -v w="$wall" 'BEGIN { exit !(w >= 0.675) }' || fail "bench --ramp-up: $ramp"
shared=$("$TRIAD" bench $S --model llama --concurrency 2 --requests 4 --prompt-tokens 24 --shared-prefix 20 --output-tokens 2 --json | tr -d ' \n')
echo "$shared" | grep -q '"requests_ok":4' && echo "$shared" | grep -q '"shared_prefix_tokens":20' || fail "bench --shared-prefix: $shared"
# Blocks of 16: each request after the two openings finds the shared prefix's first block
# cached (the second opening too when it arrives after the first one's prefill).
cached=$(echo "$shared" | sed -n 's/.*"cached_prompt_tokens":\([0-9]*\).*/\1/p')
[[ -n "$cached" && ( $cached == 32 || $cached == 48 ) ]] || fail "bench cached_prompt_tokens: $shared"
cshared=$("$TRIAD" bench $S --model llama --task entailment --concurrency 2 --requests 4 --prompt-tokens 12 --shared-prefix 10 --json | tr -d ' \n')
echo "$cshared" | grep -q '"requests_ok":4' && echo "$cshared" | grep -q '"shared_prefix_tokens":10' || fail "bench --task --shared-prefix: $cshared"
"$TRIAD" generate $S --model llama --input-ids 1,2,3 --max-new-tokens 4 --num-beams 3 > "$WORK/out" 2> "$WORK/err" ||
  fail "generate --num-beams: $(cat "$WORK/err")"
grep -q "beam score" "$WORK/err" || fail "generate --num-beams prints no score: $(cat "$WORK/err")"
"$TRIAD" generate $S --model llama --input-ids 1,2,3 --max-new-tokens 4 --num-beams 3 \
  --length-penalty 0.5 --early-stopping never > "$WORK/out" 2> "$WORK/err" ||
  fail "generate --length-penalty --early-stopping: $(cat "$WORK/err")"
beams=$("$TRIAD" bench $S --model llama --concurrency 2 --requests 4 --prompt-tokens 6 --output-tokens 3 --num-beams 3 --json | tr -d ' \n')
echo "$beams" | grep -q '"requests_ok":4' && echo "$beams" | grep -q '"num_beams":3' &&
  echo "$beams" | grep -q '"ttft_ms":{"count":4' || fail "bench --num-beams: $beams"
set +e
"$TRIAD" bench $S --model llama --requests 2 --num-beams 17 > /dev/null 2> "$WORK/err"
rc=$?
[[ $rc == 2 ]] && grep -q -- "--num-beams must be in" "$WORK/err" || fail "bad --num-beams: rc=$rc $(cat "$WORK/err")"
"$TRIAD" generate $S --model llama --input-ids 1,2 --num-beams 2 --early-stopping soon > /dev/null 2> "$WORK/err"
rc=$?
[[ $rc == 2 ]] && grep -q -- "--early-stopping: one of" "$WORK/err" || fail "bad --early-stopping: rc=$rc $(cat "$WORK/err")"
"$TRIAD" generate $S --model llama --input-ids 1,2 --length-penalty 2 > /dev/null 2> "$WORK/err"
rc=$?
[[ $rc == 1 ]] && grep -q "sampling.length_penalty" "$WORK/err" || fail "--length-penalty without beams: rc=$rc $(cat "$WORK/err")"
"$TRIAD" bench $S --model llama --requests 2 --output-spread 1 > /dev/null 2> "$WORK/err"
rc=$?
[[ $rc == 2 ]] && grep -q -- "--output-spread must be in" "$WORK/err" || fail "bad --output-spread: rc=$rc $(cat "$WORK/err")"
"$TRIAD" bench $S --model llama --requests 2 --rate 2 --ramp-up 1 > /dev/null 2> "$WORK/err"
rc=$?
[[ $rc == 2 ]] && grep -q -- "--ramp-up staggers the closed loop" "$WORK/err" || fail "--ramp-up with --rate: rc=$rc $(cat "$WORK/err")"
"$TRIAD" bench $S --model llama --requests 2 --prompt-tokens 8 --shared-prefix 9 > /dev/null 2> "$WORK/err"
rc=$?
[[ $rc == 2 ]] && grep -q -- "--shared-prefix must be in" "$WORK/err" || fail "bad --shared-prefix: rc=$rc $(cat "$WORK/err")"
"$TRIAD" generate $S --model nope --prompt x > /dev/null 2> "$WORK/err"
rc=$?
set -e
[[ $rc == 1 ]] && grep -q "no model named" "$WORK/err" || fail "unknown model: rc=$rc $(cat "$WORK/err")"
kill -TERM $PID
wait $PID
rc=$?
[[ $rc == 0 ]] || fail "triadd exited $rc after SIGTERM"
echo "cli_test: ok"
