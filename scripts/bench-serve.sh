# Sourced by the serving benchmarks (bench-classify.sh, bench-generate.sh): start_triadd CONFIG
# starts $BUILD_DIR/server/triadd (or $TRIADD) with CONFIG on 127.0.0.1:$PORT (log in /tmp),
# stops it when the script exits (or at stop_triadd), and waits until its health check answers
# SERVING.
start_triadd() {
  local config=$1 log="/tmp/triad-$(basename "$1" .json).log"
  "${TRIADD:-$BUILD_DIR/server/triadd}" --config "$config" --listen "127.0.0.1:$PORT" --metrics-port 0 \
    >"$log" 2>&1 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 1 300); do
    "$BUILD_DIR/client/triad" health --server "127.0.0.1:$PORT" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "triadd did not become healthy; see $log" >&2
  return 1
}
stop_triadd() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
}
