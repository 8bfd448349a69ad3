#!/usr/bin/env bash
# A real Prometheus server (Debian's `prometheus`) scrapes triadd's /metrics, and
# `promtool check metrics` accepts the exposition (label integration).
# Usage: prometheus_test.sh TRIADD TRIAD DATA_DIR
set -euo pipefail
TRIADD=$1 TRIAD=$2 DATA=$(cd "$3" && pwd)
PORT=$((20000 + RANDOM % 30000))
MPORT=$((PORT + 1)) PPORT=$((PORT + 2))
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 $p 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; cat "$WORK"/*.log 2>/dev/null | tail -30; exit 1; }
cat > "$WORK/triad.json" <<JSON
{"listen": "127.0.0.1:$PORT", "metrics_port": $MPORT, "threads": 1, "models": [
  {"name": "llama", "path": "$DATA/models/llama-tiny", "tokenizer": "$DATA/tokenizers/llama-tiny",
   "refill_window_ms": 5}]}
JSON
"$TRIADD" --config "$WORK/triad.json" 2> "$WORK/triadd.log" &
PIDS+=($!)
S="--server 127.0.0.1:$PORT"
for _ in $(seq 600); do "$TRIAD" health $S > /dev/null 2>&1 && break; sleep 0.1; done
"$TRIAD" generate $S --model llama --prompt "The license" --max-new-tokens 4 > /dev/null 2>&1 \
  || fail "generate"
# Closed-loop clients whose outputs differ in length (bench: ignore_eos, lengths drawn from
# [3, 32]): generations end while others run, so the next steps wait for the refill window and
# the refill counters are in the exposition too.
"$TRIAD" bench $S --model llama --concurrency 4 --requests 12 --prompt-tokens 8 \
  --output-tokens 32 --output-spread 0.9 > "$WORK/bench.log" 2>&1 || fail "bench"
curl -sf "http://127.0.0.1:$MPORT/metrics" > "$WORK/metrics.txt" || fail "GET /metrics"
promtool check metrics < "$WORK/metrics.txt" || fail "promtool check metrics"
grep -q '^triad_refill_waits_total{model="llama",outcome="[a-z]*"} ' "$WORK/metrics.txt" \
  || fail "no refill wait counted: $(grep refill "$WORK/metrics.txt")"
for kind in prefill decode; do
  grep -q "^triad_engine_step_duration_seconds_count{kind=\"$kind\",model=\"llama\"} [1-9]" \
    "$WORK/metrics.txt" || fail "no $kind step timed: $(grep step_duration_seconds_count "$WORK/metrics.txt")"
done
cat > "$WORK/prometheus.yml" <<YAML
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: triadd
    static_configs: [{targets: ["127.0.0.1:$MPORT"]}]
YAML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PPORT" 2> "$WORK/prometheus.log" &
PIDS+=($!)
query="http://127.0.0.1:$PPORT/api/v1/query?query=triad_generated_tokens_total"
for _ in $(seq 60); do
  if curl -sf "$query" 2>/dev/null | grep -q '"model":"llama"'; then
    echo "prometheus_test: ok (scraped $(wc -l < "$WORK/metrics.txt") lines)"
    exit 0
  fi
  sleep 0.5
done
fail "Prometheus never returned triad_generated_tokens_total: $(curl -s "$query")"
