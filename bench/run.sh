#!/usr/bin/env bash
# Runs the benchmarks of docs/BENCHMARKS.md in order, one fresh server per run, and keeps each
# run's full output in $OUT (default /tmp/videomeet-bench). Every figure in BENCHMARKS.md was
# printed by one of these runs.
#
#   bash bench/run.sh            # everything but the soak (about 12 minutes)
#   bash bench/run.sh soak       # the 10-minute soak
#   bash bench/run.sh scale      # or any of: idle start scale throughput socketio flood flood64
#   SIZES=3000 bash bench/run.sh scale
#
# Needs: a release build (cargo build --release -p videomeet -p loadgen), and for `socketio`
# redis-server (apt-get install -y redis-server) and `npm ci` in bench/socketio-relay.
set -u
cd "$(dirname "$0")/.."
B=target/release
OUT=${OUT:-/tmp/videomeet-bench}
mkdir -p "$OUT"
PORT=18090
RAISED=(--set rates.socket_messages_per_sec=1000000 --set rates.socket_messages_burst=1000000)
BUDGET64=(--set budget.total_mib=64 --set budget.reserve_mib=8 --set arenas.sockets_mib=38
  --set arenas.rooms_mib=2 --set arenas.in_flight_mib=8 --set arenas.outbound_mib=3
  --set turn.allocations_mib=2 --set turn.streams_mib=1 --set arenas.connections_mib=2)

# start_server NAME ARGS... : a fresh videomeet on $PORT, its pid in $PID.
start_server() {
  local name=$1
  shift
  PORT=$((PORT + 1))
  RUST_LOG=warn "$B/videomeet" --listen "127.0.0.1:$PORT" --stun-listen off --state-dir off "$@" \
    2>"$OUT/$name.server.log" &
  PID=$!
  for _ in $(seq 100); do
    # (kill -0: a stale server on the same port must not be measured instead)
    kill -0 "$PID" 2>/dev/null || break
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return
    sleep 0.05
  done
  echo "server $name did not start" >&2
  exit 1
}

stop_server() {
  kill "$PID" 2>/dev/null
  wait "$PID" 2>/dev/null
}

# run NAME COMMAND... : runs and tees the output to $OUT/NAME.txt.
run() {
  local name=$1
  shift
  echo "== $name: $*"
  "$@" 2>&1 | tee "$OUT/$name.txt" | sed -n '/--- summary ---/,$p'
}

idle() {
  start_server idle-http --tls-listen off
  run idle-http "$B/loadgen" idle --pid "$PID" --secs 2
  stop_server
  # The shipped defaults: HTTPS with a self-signed certificate, STUN/TURN on.
  rm -rf "$OUT/state"
  PORT=$((PORT + 1))
  RUST_LOG=warn "$B/videomeet" --listen "127.0.0.1:$PORT" --tls-listen 127.0.0.1:18453 \
    --stun-listen 127.0.0.1:13478 --state-dir "$OUT/state" 2>"$OUT/idle-default.server.log" &
  PID=$!
  sleep 1
  run idle-default "$B/loadgen" idle --pid "$PID" --secs 2
  stop_server
  if [ -x target/x86_64-unknown-linux-musl/release/videomeet ]; then
    PORT=$((PORT + 1))
    RUST_LOG=warn target/x86_64-unknown-linux-musl/release/videomeet --listen "127.0.0.1:$PORT" \
      --tls-listen 127.0.0.1:18453 --stun-listen 127.0.0.1:13478 --state-dir "$OUT/state" \
      2>"$OUT/idle-musl.server.log" &
    PID=$!
    sleep 1
    run idle-musl "$B/loadgen" idle --pid "$PID" --secs 2
    stop_server
  fi
}

start() {
  run start-http "$B/startbench" --runs 20 -- --tls-listen off --stun-listen off --state-dir off
  rm -rf "$OUT/state2"
  run start-first "$B/startbench" --runs 1 --port 18402 -- --tls-listen 127.0.0.1:18454 \
    --stun-listen 127.0.0.1:13479 --state-dir "$OUT/state2"
  run start-default "$B/startbench" --runs 20 --port 18403 -- --tls-listen 127.0.0.1:18454 \
    --stun-listen 127.0.0.1:13479 --state-dir "$OUT/state2"
}

scale() {
  for n in ${SIZES:-600 3000 10000}; do
    start_server "scale-$n" --tls-listen off
    run "scale-$n" "$B/loadgen" scale --addr "127.0.0.1:$PORT" --pid "$PID" --participants "$n" \
      --hold 60 --csv "$OUT/scale-$n.csv" --svg "$OUT/scale-$n.svg" \
      --svg-participants "$OUT/scale-$n-n.svg"
    stop_server
  done
}

throughput() {
  start_server throughput-max --tls-listen off "${RAISED[@]}"
  run throughput-max "$B/loadgen" throughput --addr "127.0.0.1:$PORT" --pid "$PID" --rooms 100 --secs 30
  stop_server
  start_server throughput-20k --tls-listen off "${RAISED[@]}"
  run throughput-20k "$B/loadgen" throughput --addr "127.0.0.1:$PORT" --pid "$PID" --rooms 100 \
    --secs 30 --rate 20000
  stop_server
}

socketio() {
  redis-server --port 16379 --save '' --appendonly no --daemonize yes >/dev/null
  sleep 0.5
  local redis
  redis=$(pgrep -f 'redis-server .*:16379' | head -1)
  start_node() {
    (cd bench/socketio-relay && REDIS_URL=redis://127.0.0.1:16379 PORT=13000 exec node server.js) \
      >"$OUT/node.log" 2>&1 &
    NODE=$!
    for _ in $(seq 100); do grep -q listening "$OUT/node.log" && break; sleep 0.1; done
  }
  start_node
  sleep 2
  run socketio-idle "$B/loadgen" idle --pid "$NODE" --pid "$redis" --secs 2
  run socketio-scale-600 "$B/loadgen" scale --proto socketio --addr 127.0.0.1:13000 --pid "$NODE" \
    --pid "$redis" --participants 600 --hold 60 --churn off
  kill "$NODE"; wait "$NODE" 2>/dev/null
  start_node
  run socketio-throughput-max "$B/loadgen" throughput --proto socketio --addr 127.0.0.1:13000 \
    --pid "$NODE" --pid "$redis" --rooms 100 --secs 30
  kill "$NODE"; wait "$NODE" 2>/dev/null
  start_node
  run socketio-throughput-20k "$B/loadgen" throughput --proto socketio --addr 127.0.0.1:13000 \
    --pid "$NODE" --pid "$redis" --rooms 100 --secs 30 --rate 20000
  kill "$NODE"; wait "$NODE" 2>/dev/null
  redis-cli -p 16379 shutdown nosave >/dev/null 2>&1
  # VideoMeet with the same workload (no churn), for the ratio.
  start_server scale-600-nochurn --tls-listen off
  run scale-600-nochurn "$B/loadgen" scale --addr "127.0.0.1:$PORT" --pid "$PID" --participants 600 \
    --hold 60 --churn off
  stop_server
}

flood() {
  start_server flood-default --tls-listen off
  run flood-default "$B/loadgen" flood --addr "127.0.0.1:$PORT" --pid "$PID" --tricklers 2000 \
    --nonreaders 20 --storm 100 --honest 60 --secs 30 --cgroup-mib 512
  stop_server
  flood64
}

flood64() {
  start_server flood-64 --tls-listen off "${BUDGET64[@]}"
  run flood-64 "$B/loadgen" flood --addr "127.0.0.1:$PORT" --pid "$PID" --tricklers 2000 \
    --nonreaders 4 --storm 100 --honest 60 --secs 30 --cgroup-mib 512
  stop_server
}

soak() {
  start_server soak --tls-listen off --set timers.room_ttl_secs=5 --set timers.sweep_secs=1
  run soak "$B/loadgen" soak --addr "127.0.0.1:$PORT" --pid "$PID" --secs 600 --meetings-per-sec 2 \
    --meeting-secs 5 --room-ttl 5 --sweep 1 --csv "$OUT/soak.csv" --svg "$OUT/soak.svg"
  stop_server
}

if [ $# -eq 0 ]; then
  set -- idle start scale throughput socketio flood
fi
for what in "$@"; do
  "$what"
done
