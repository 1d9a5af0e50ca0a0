#!/usr/bin/env bash
# Runs the benchmarks of docs/BENCHMARKS.md in order, one fresh server per run, and keeps each
# run's full output in $OUT (default /tmp/videomeet-bench). Every figure in BENCHMARKS.md was
# printed by one of these runs.
#
#   bash bench/run.sh            # everything but the soak (about 12 minutes)
#   bash bench/run.sh soak       # the 10-minute soak
#   bash bench/run.sh scale      # or any of: idle start scale throughput latency socketio flood flood64
#   SIZES=3000 bash bench/run.sh scale
#   RUNS=10 bash bench/run.sh throughput   # each scenario 10 times; outputs NAME.1.txt, NAME.2.txt, ...
#   bash bench/run.sh margin               # heap and RSS per participant at the margin, 600 -> 3000
#   bash bench/run.sh socketio-margin      # RSS per participant at the margin, VideoMeet and the
#                                          # Node reference, same workload, and their ratio
#
# Before each timed run it waits (up to 60 s) until the rest of the machine uses under
# QUIET_PCT (default 20) percent of all cores, measured over 2 s from /proc/stat minus this
# script's own server and generator; past that it refuses (exit 3), or with SHARED=1 runs anyway
# and says so in the run's output ("machine: shared, N% busy"), so no figure is taken on a
# shared machine unknowingly.
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

# busy_pct: percent of all cores busy over 2 s (from /proc/stat), less what $PID (the server
# under test, when running) used; the generator is not running yet when this is asked.
busy_pct() {
  local a b own_a own_b hz cores
  read -r _ a1 a2 a3 a4 a5 a6 a7 _ </proc/stat
  own_a=$( [ -n "${PID:-}" ] && awk '{print $14+$15}' "/proc/$PID/stat" 2>/dev/null || echo 0)
  sleep 2
  read -r _ b1 b2 b3 b4 b5 b6 b7 _ </proc/stat
  own_b=$( [ -n "${PID:-}" ] && awk '{print $14+$15}' "/proc/$PID/stat" 2>/dev/null || echo 0)
  local busy=$(( (b1+b2+b3+b6+b7) - (a1+a2+a3+a6+a7) - (own_b-own_a) ))
  local total=$(( (b1+b2+b3+b4+b5+b6+b7) - (a1+a2+a3+a4+a5+a6+a7) ))
  [ "$total" -gt 0 ] || total=1
  echo $(( busy * 100 / total ))
}

# quiet: waits for a quiet machine (see the top); prints the machine line for the run.
quiet() {
  local pct
  for _ in $(seq 30); do
    pct=$(busy_pct)
    if [ "$pct" -lt "${QUIET_PCT:-20}" ]; then
      echo "machine: quiet, ${pct}% busy"
      return 0
    fi
  done
  if [ "${SHARED:-0}" = 1 ]; then
    echo "machine: shared, ${pct}% busy"
    return 0
  fi
  echo "the machine stayed ${pct}% busy for 60 s (over ${QUIET_PCT:-20}%): not timing; SHARED=1 to run anyway" >&2
  exit 3
}

# cpu_ticks: /proc/stat's steal ticks and all ticks (user to steal), summed over the CPUs.
cpu_ticks() {
  awk '/^cpu /{t=0; for (i = 2; i <= 9; i++) t += $i; print $9, t}' /proc/stat
}

# steal_since "STEAL TOTAL": the share of CPU time since then that the hypervisor gave to
# something else while this VM's CPUs had work (/proc/stat "steal"). A busy check inside the
# VM cannot see it; on this machine the end-to-end tail follows it run by run.
steal_since() {
  # shellcheck disable=SC2086 # two numbers, split on purpose
  set -- $1 $(cpu_ticks)
  awk -v s0="$1" -v t0="$2" -v s1="$3" -v t1="$4" \
    'BEGIN { printf "machine: the hypervisor took %.1f%% of the CPU time during the run (steal)\n", (t1 > t0 ? 100 * (s1 - s0) / (t1 - t0) : 0) }'
}

# run NAME COMMAND... : runs (RUNS times, default 1) and tees each output to $OUT/NAME.txt
# (NAME.1.txt, NAME.2.txt, ... when RUNS > 1), each headed by its machine line and ended by
# the steal during it.
run() {
  local name=$1
  shift
  local runs=${RUNS:-1}
  for i in $(seq "$runs"); do
    local file="$OUT/$name.txt"
    [ "$runs" -gt 1 ] && file="$OUT/$name.$i.txt"
    if [ "$runs" -gt 1 ]; then echo "== $name ($i of $runs): $*"; else echo "== $name: $*"; fi
    { quiet; local ticks; ticks=$(cpu_ticks); "$@" 2>&1; steal_since "$ticks"; } | tee "$file" |
      sed -n '/--- summary ---/,${p;d};/^machine:/p'
  done
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
  latency
}

# latency: the relay's latency at 20,000 messages/s alone (the second half of `throughput`).
latency() {
  start_server throughput-20k --tls-listen off "${RAISED[@]}"
  run throughput-20k "$B/loadgen" throughput --addr "127.0.0.1:$PORT" --pid "$PID" --rooms 100 \
    --secs 30 --rate 20000
  stop_server
}

# start_redis: the reference's redis on 16379, its pid in $REDIS.
start_redis() {
  redis-server --port 16379 --save '' --appendonly no --daemonize yes >/dev/null
  sleep 0.5
  REDIS=$(pgrep -f 'redis-server .*:16379' | head -1)
}

stop_redis() {
  redis-cli -p 16379 shutdown nosave >/dev/null 2>&1
}

# start_node: a fresh Socket.io reference on 13000 (over $REDIS), its pid in $NODE.
start_node() {
  : >"$OUT/node.log"
  (cd bench/socketio-relay && REDIS_URL=redis://127.0.0.1:16379 PORT=13000 exec node server.js) \
    >"$OUT/node.log" 2>&1 &
  NODE=$!
  for _ in $(seq 300); do grep -q listening "$OUT/node.log" && return; sleep 0.1; done
  # (A reference that did not start must not be measured as redis alone.)
  echo "the Node reference did not start (npm ci in bench/socketio-relay?): $(tail -3 "$OUT/node.log")" >&2
  exit 1
}

socketio() {
  start_redis
  local redis=$REDIS
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
  stop_redis
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

# margin: heap (the server's own allocator count, /metrics) and RSS at SIZES participants (600
# and 3000) during the hold of a full meeting workload without churn, and the memory each
# participant past the first 600 adds, printed by this script, not worked out by hand.
margin() {
  local sizes=(${SIZES:-600 3000}) heap=() rss=()
  for n in "${sizes[@]}"; do
    # Counts, not times: no quiet check (a busy machine changes neither count).
    start_server "margin-$n" --tls-listen off
    "$B/loadgen" scale --addr "127.0.0.1:$PORT" --pid "$PID" --participants "$n" --hold 16 \
      --churn off >"$OUT/margin-$n.txt" 2>&1 &
    local gen=$!
    for _ in $(seq 600); do grep -q "workload done" "$OUT/margin-$n.txt" && break; sleep 0.5; done
    sleep 8
    heap+=("$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^videomeet_heap_bytes /{print $2}')")
    rss+=("$(awk '/VmRSS/{print $2}' "/proc/$PID/status")")
    echo "participants $n: heap ${heap[-1]} bytes, VmRSS ${rss[-1]} KiB"
    wait "$gen"
    stop_server
  done
  local extra=$(( sizes[-1] - sizes[0] ))
  awk -v h0="${heap[0]}" -v h1="${heap[-1]}" -v r0="${rss[0]}" -v r1="${rss[-1]}" -v n="$extra" \
    'BEGIN { printf "per participant at the margin: heap %.2f KiB, RSS %.2f KiB\n", (h1-h0)/n/1024, (r1-r0)/n }'
}

# rss_kib PID...: the processes' VmRSS summed, in KiB.
rss_kib() {
  local total=0 p
  for p in "$@"; do
    total=$((total + $(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# hold_rss NAME ADDR N PROTO PID...: the scale workload with N participants (no churn) against
# ADDR, and 8 s into its hold the summed VmRSS of the PIDs, in KiB, into $HELD. After a quiet
# check, as for every figure of the side by side.
hold_rss() {
  local name=$1 addr=$2 n=$3 proto=$4
  shift 4
  quiet >"$OUT/$name.txt" || exit 3
  "$B/loadgen" scale --proto "$proto" --addr "$addr" --participants "$n" --hold 16 --churn off \
    $(printf -- '--pid %s ' "$@") >>"$OUT/$name.txt" 2>&1 &
  local gen=$!
  for _ in $(seq 600); do grep -q "workload done" "$OUT/$name.txt" && break; sleep 0.5; done
  sleep 8
  HELD=$(rss_kib "$@")
  wait "$gen"
}

# socketio-margin: VmRSS at SIZES participants (600 and 3000) in the hold of the same workload
# (`loadgen scale --churn off`) against VideoMeet and the Socket.io reference (Node and its
# redis, both counted: the reference needs both), each size on a fresh process; prints each
# side's KiB per participant past the first 600, and their ratio, worked out here, not by hand.
socketio-margin() {
  local sizes=(${SIZES:-600 3000}) vm=() node=()
  for n in "${sizes[@]}"; do
    start_server "vm-margin-$n" --tls-listen off
    hold_rss "vm-margin-$n" "127.0.0.1:$PORT" "$n" videomeet "$PID"
    vm+=("$HELD")
    echo "videomeet, participants $n: VmRSS $HELD KiB"
    stop_server
    start_redis
    start_node
    hold_rss "socketio-margin-$n" 127.0.0.1:13000 "$n" socketio "$NODE" "$REDIS"
    node+=("$HELD")
    echo "socket.io reference (node + redis), participants $n: VmRSS $HELD KiB"
    kill "$NODE"; wait "$NODE" 2>/dev/null
    stop_redis
  done
  awk -v v0="${vm[0]}" -v v1="${vm[-1]}" -v s0="${node[0]}" -v s1="${node[-1]}" \
    -v n="$(( sizes[-1] - sizes[0] ))" -v a="${sizes[0]}" -v b="${sizes[-1]}" 'BEGIN {
      vm = (v1 - v0) / n; ref = (s1 - s0) / n
      printf "RSS per participant at the margin (%d -> %d): videomeet %.2f KiB, socket.io reference %.2f KiB\n", a, b, vm, ref
      if (vm > 0) printf "ratio at the margin: the reference uses %.1fx the RSS per participant of videomeet\n", ref / vm
      else print "ratio at the margin: undefined (videomeet grew by nothing)"
    }'
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
