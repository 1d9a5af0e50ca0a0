//! Command line: one scenario name, then `--flag value` pairs. One flat struct for every
//! scenario keeps the parser a single match (no argument-parsing dependency for a bench tool);
//! each scenario reads the fields it uses and ignores the rest.

use std::net::SocketAddr;

use crate::proto::Proto;

pub const HELP: &str = r#"loadgen: simulated VideoMeet meetings over the real protocol, with the server's memory and
CPU sampled from /proc. Every scenario ends with an errors-by-kind table and a `--- summary ---`
block of `key: value` lines (stable keys, for docs/BENCHMARKS.md).

Usage: loadgen SCENARIO [OPTIONS]

Build, and a server to measure (one per run: the RSS baseline must be fresh):
  CARGO_TARGET_DIR=/work/target-loadgen cargo build --release -p videomeet -p loadgen
  B=/work/target-loadgen/release
  $B/videomeet --listen 127.0.0.1:18090 --tls-listen off --stun-listen off --state-dir off &
  PID=$!

Scenarios:
  idle        RSS of a server nobody uses.
      $B/loadgen idle --pid $PID --secs 2

  scale       N participants in rooms of 6, the full meeting workload (joins; 4 KiB offer and
              answer and 10 ICE candidates of 200 B each way per pair; mute and camera updates;
              a chat each; per room one leave-and-rejoin and one drop-and-resume), then all held
              open, answering heartbeats, for --hold s. KiB per participant two ways: (RSS
              connected - RSS idle before start) / N, and RSS connected / N.
      $B/loadgen scale --addr 127.0.0.1:18090 --pid $PID --participants 600 --hold 60 \
          --csv /tmp/rss600.csv --svg /tmp/rss600.svg --svg-participants /tmp/rss600-n.svg
      (the issue's runs: 600, 3000 and 10000 with --hold 60. The generator raises its open-file
      limit, spreads its sockets over 127.x.y.z source addresses, keeps at most
      --connect-concurrency connects+joins in progress so the accept backlog never overflows,
      and retries a failed connect with backoff: `connect_retries` in the summary.)

  throughput  rooms of 6 joined, then every participant sends ~200 B candidate-like signals
              round-robin to its 5 peers: as fast as the server takes them (each sender at most
              --window signals not yet seen by their receivers), or --rate messages/s in all.
              Reports delivered msg/s, relay latency, server CPU (% of one core: 200 % is both
              cores of a 2-core host); with --rate also how late the generator sent against its
              schedule (generator_lag_*, kept out of relay latency) and how long its woken tasks
              waited to run (generator_wake_*); and the server's own share from its /metrics
              (server_relay_*, upper bounds of videomeet_relay_seconds' buckets). The pacing is
              one thread, not per-sender tokio timers (1 ms grain). The server's per-socket
              message rate must be raised:
      $B/videomeet --listen 127.0.0.1:18090 --tls-listen off --stun-listen off --state-dir off \
          --set rates.socket_messages_per_sec=1000000 --set rates.socket_messages_burst=1000000 &
      $B/loadgen throughput --addr 127.0.0.1:18090 --pid $! --rooms 100 --secs 30
      $B/loadgen throughput --addr 127.0.0.1:18090 --pid $! --rooms 100 --secs 30 --rate 20000

  soak        a steady --meetings-per-sec of new meetings (fresh room names, 6 people, the full
              workload with churn and resume), each staying --meeting-secs then leaving, for
              --secs; then waits for the last rooms to expire and compares the final RSS with the
              warmed-up level: warm = median RSS over 10 % of the run after a warm-up of 60 s or
              10 % of the run, whichever is later (at most 25 %); PASS if final <= 1.05 x warm
              and the second half's least-squares slope x its duration < 2 % of warm, else FAIL
              with the reason (exit 1). Also prints the server's room and seat gauges from
              /metrics (back to 0). Shorten the server's room TTL and sweep so rooms expire
              during the run (and tell loadgen the same values):
      $B/videomeet --listen 127.0.0.1:18090 --tls-listen off --stun-listen off --state-dir off \
          --set timers.room_ttl_secs=5 --set timers.sweep_secs=1 &
      $B/loadgen soak --addr 127.0.0.1:18090 --pid $! --secs 600 --meetings-per-sec 2 \
          --meeting-secs 5 --room-ttl 5 --sweep 1 --csv /tmp/soak.csv --svg /tmp/soak.svg

  flood       the hostile flood: --tricklers sockets each beginning an almost-1 MiB frame and
              trickling it (from 127.1.x.y), --nonreaders sockets that join and never read while
              their room-mates send them 4 KiB signals, a --storm of sockets joining and leaving
              as fast as they can, and meanwhile --honest participants in rooms of 6 doing the
              full workload (their join latency and errors reported apart from the hostile
              ones). Reports peak VmHWM against the budget, the server's own heap peak and arena
              peaks from /metrics, and whether it survived (exit 1 if it died or an honest
              participant saw an error). Optionally inside a cgroup v1 memory limit (as root):
              --cgroup-mib 512 creates /sys/fs/cgroup/memory/videomeet-flood, moves every --pid
              into it, reports max_usage, failcnt and oom_kill, then moves them back and removes
              it. Default budget:
      $B/videomeet --listen 127.0.0.1:18090 --tls-listen off --stun-listen off --state-dir off &
      $B/loadgen flood --addr 127.0.0.1:18090 --pid $! --tricklers 2000 --nonreaders 20 \
          --storm 100 --honest 60 --secs 30 --cgroup-mib 512
      and under a 64 MiB budget. budget.total_mib=64 alone is refused at start ("the arenas
      (408 MiB) and the reserve (42 MiB) exceed budget.total_mib (64 MiB)"): the arenas must be
      scaled with it. This set fits 64 exactly (38+2+8+3+2+1+2 + 8 reserve) and admits 2,432
      sockets (the 2,000 tricklers, the non-readers and their senders, the storm, the honest):
      $B/videomeet --listen 127.0.0.1:18090 --tls-listen off --stun-listen off --state-dir off \
          --set budget.total_mib=64 --set budget.reserve_mib=8 --set arenas.sockets_mib=38 \
          --set arenas.rooms_mib=2 --set arenas.in_flight_mib=8 --set arenas.outbound_mib=3 \
          --set turn.allocations_mib=2 --set turn.streams_mib=1 --set arenas.connections_mib=2 &
      $B/loadgen flood --addr 127.0.0.1:18090 --pid $! --tricklers 2000 --nonreaders 4 \
          --storm 100 --honest 60 --secs 30 --cgroup-mib 512

Socket.io side-by-side (scale and throughput): --proto socketio talks to the Node reference
relay in bench/socketio-relay (node + redis-server: give both with --pid, each is reported and
their sum):
  redis-server --port 16379 --save '' --appendonly no --daemonize yes
  (cd bench/socketio-relay && npm ci && REDIS_URL=redis://127.0.0.1:16379 PORT=13000 node server.js &)
  $B/loadgen scale --proto socketio --addr 127.0.0.1:13000 --pid $(pidof node) \
      --pid $(pidof redis-server) --participants 600 --hold 60
  $B/loadgen throughput --proto socketio --addr 127.0.0.1:13000 --pid $(pidof node) \
      --pid $(pidof redis-server) --rooms 100 --secs 30 --rate 20000
The reference has no seat grace: a socket dropped without `leave` frees its seat at once, so
the drop-and-resume of the churn gets a new seat there and counts `resume_mismatch` once per
room. That is the difference being measured; --churn off runs both servers without churn.

Options (scenario defaults in brackets):
  --addr HOST:PORT          the server [127.0.0.1:8080]
  --pid PID                 a server process to sample; repeat for several (required)
  --proto P                 videomeet | socketio [videomeet]
  --csv FILE                samples: seconds,connected,rss_kib,hwm_kib,cpu_pct (+ per process)
  --svg FILE                RSS and HWM over time
  --svg-participants FILE   scale: RSS against connected participants
  --sample-ms MS            sampling period [500; soak 1000]
  --secs S                  idle: wait [2]; throughput: measuring time [10];
                            soak: launching time [600]; flood: duration [30]
  --participants N          scale [600]
  --room-size N             scale, soak: people per room [6]
  --hold S                  scale: hold after the workload [20]
  --churn on|off            leave+rejoin and drop+resume in each room [on]
  --connect-concurrency N   connects+joins in progress at once [128]
  --connect-retries N       retries of a failed TCP connect/handshake, with backoff [5]
  --rooms R                 throughput [10]
  --rate MSGS_PER_SEC       throughput: fixed total rate [unset: as fast as possible]
  --window N                throughput: a sender's signals not yet received [64]
  --meetings-per-sec M      soak [1]
  --meeting-secs S          soak: how long each meeting stays [5]
  --room-ttl S, --sweep S   soak: the server's timers.room_ttl_secs and sweep_secs [5, 1]
  --tricklers N             flood [2000]
  --nonreaders K            flood [20]
  --storm J                 flood: join-storm sockets [100]
  --honest N                flood: honest participants [60]
  --nonreader-senders N     flood: room-mates sending to each non-reader, 1-5 [5]
  --nonreader-rate R        flood: 4 KiB signals/s from each of them [50]
  --cgroup-mib N            flood: run the server in a memory cgroup of N MiB
  -h, --help                this text
"#;

pub struct Args {
    pub cmd: String,
    pub addr: SocketAddr,
    pub pids: Vec<u32>,
    pub proto: Proto,
    pub csv: Option<String>,
    pub svg: Option<String>,
    pub svg_participants: Option<String>,
    pub sample_ms: Option<u64>,
    pub secs: Option<u64>,
    pub participants: usize,
    pub room_size: usize,
    pub hold: u64,
    pub churn: bool,
    pub connect_concurrency: usize,
    pub connect_retries: u32,
    pub rooms: usize,
    pub rate: Option<f64>,
    pub window: u64,
    pub meetings_per_sec: f64,
    pub meeting_secs: f64,
    pub room_ttl: u64,
    pub sweep: u64,
    pub tricklers: usize,
    pub nonreaders: usize,
    pub storm: usize,
    pub honest: usize,
    pub nonreader_senders: usize,
    pub nonreader_rate: f64,
    pub cgroup_mib: Option<u64>,
}

pub enum Parsed {
    Run(Box<Args>),
    Help,
}

fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    v.parse()
        .map_err(|e| format!("{flag} wants a number, not `{v}`: {e}"))
}

pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut it = argv.into_iter();
    let cmd = match it.next() {
        None => return Err("which scenario? (loadgen --help)".into()),
        Some(h) if h == "-h" || h == "--help" || h == "help" => return Ok(Parsed::Help),
        Some(c) => c,
    };
    let mut a = Args {
        cmd,
        addr: "127.0.0.1:8080".parse().expect("valid"),
        pids: Vec::new(),
        proto: Proto::VideoMeet,
        csv: None,
        svg: None,
        svg_participants: None,
        sample_ms: None,
        secs: None,
        participants: 600,
        room_size: 6,
        hold: 20,
        churn: true,
        connect_concurrency: 128,
        connect_retries: 5,
        rooms: 10,
        rate: None,
        window: 64,
        meetings_per_sec: 1.0,
        meeting_secs: 5.0,
        room_ttl: 5,
        sweep: 1,
        tricklers: 2000,
        nonreaders: 20,
        storm: 100,
        honest: 60,
        nonreader_senders: 5,
        nonreader_rate: 50.0,
        cgroup_mib: None,
    };
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(Parsed::Help);
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => a.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?,
            "--pid" => a.pids.push(num(&flag, v)?),
            "--proto" => a.proto = Proto::parse(&v)?,
            "--csv" => a.csv = Some(v),
            "--svg" => a.svg = Some(v),
            "--svg-participants" => a.svg_participants = Some(v),
            "--sample-ms" => a.sample_ms = Some(num(&flag, v)?),
            "--secs" => a.secs = Some(num(&flag, v)?),
            "--participants" => a.participants = num(&flag, v)?,
            "--room-size" => a.room_size = num(&flag, v)?,
            "--hold" => a.hold = num(&flag, v)?,
            "--churn" => {
                a.churn = match v.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("--churn is on or off, not `{v}`")),
                }
            }
            "--connect-concurrency" => a.connect_concurrency = num(&flag, v)?,
            "--connect-retries" => a.connect_retries = num(&flag, v)?,
            "--rooms" => a.rooms = num(&flag, v)?,
            "--rate" => a.rate = Some(num(&flag, v)?),
            "--window" => a.window = num(&flag, v)?,
            "--meetings-per-sec" => a.meetings_per_sec = num(&flag, v)?,
            "--meeting-secs" => a.meeting_secs = num(&flag, v)?,
            "--room-ttl" => a.room_ttl = num(&flag, v)?,
            "--sweep" => a.sweep = num(&flag, v)?,
            "--tricklers" => a.tricklers = num(&flag, v)?,
            "--nonreaders" => a.nonreaders = num(&flag, v)?,
            "--storm" => a.storm = num(&flag, v)?,
            "--honest" => a.honest = num(&flag, v)?,
            "--nonreader-senders" => a.nonreader_senders = num(&flag, v)?,
            "--nonreader-rate" => a.nonreader_rate = num(&flag, v)?,
            "--cgroup-mib" => a.cgroup_mib = Some(num(&flag, v)?),
            other => return Err(format!("unknown option {other} (loadgen --help)")),
        }
    }
    if a.pids.is_empty() {
        return Err("--pid PID of the server is required (repeat it for several processes)".into());
    }
    if a.room_size < 2 || a.room_size > 6 {
        return Err("--room-size is 2 to 6".into());
    }
    if !(1..=5).contains(&a.nonreader_senders) {
        return Err("--nonreader-senders is 1 to 5 (a room has 6 seats)".into());
    }
    if a.connect_concurrency == 0 || a.window == 0 {
        return Err("--connect-concurrency and --window must be at least 1".into());
    }
    if a.rate.is_some_and(|r| r <= 0.0) || a.meetings_per_sec <= 0.0 {
        return Err("--rate and --meetings-per-sec must be positive".into());
    }
    Ok(Parsed::Run(Box::new(a)))
}

impl Args {
    pub fn secs_or(&self, default: u64) -> u64 {
        self.secs.unwrap_or(default)
    }

    pub fn sample_every(&self, default_ms: u64) -> std::time::Duration {
        std::time::Duration::from_millis(self.sample_ms.unwrap_or(default_ms).max(50))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Parsed, String> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn repeated_pids_and_proto() {
        let Ok(Parsed::Run(a)) = args("scale --pid 1 --pid 2 --proto socketio --rate 5") else {
            panic!("parses");
        };
        assert_eq!(a.pids, vec![1, 2]);
        assert_eq!(a.proto, Proto::SocketIo);
        assert_eq!(a.rate, Some(5.0));
        assert!(args("scale").is_err());
        assert!(args("scale --pid 1 --bogus 2").is_err());
        assert!(matches!(args("--help"), Ok(Parsed::Help)));
    }
}
