//! `throughput`: rooms of 6 joined, then every participant sends ~200 B candidate-like signals
//! round-robin to its 5 peers, each stamped with its send time.
//!
//! Without `--rate`, as fast as the server takes them, with a bounded window per sender: at
//! most `--window` of its signals not yet seen by their receivers (the protocol has no echo, so
//! receivers count what they got from each sender in shared atomics, and the sender waits on
//! them). A receiver then has at most about `--window` frames queued towards it, far from the
//! server's per-socket outbound cap (2 MiB, 256 frames), whose overflow would drop the socket.
//! With `--rate`, that total rate is spread evenly across senders (each its own evenly spaced
//! schedule, phases staggered), the window still guarding against overload.
//!
//! A signal the server drops (for instance past its per-socket rate, `slow_down`) never
//! arrives, so a sender whose window stays full for a second writes the missing ones off
//! (`window_stalls`) instead of waiting forever.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::time::Instant as TokioInstant;

use crate::args::Args;
use crate::client::{Failure, Incoming};
use crate::proc::{self, Reading};
use crate::stats::{Stats, Summary};
use crate::workload::{candidate_signal, join_json, micros, Ctx};

const ROOM: usize = 6;
/// How long a full window may stay full before its signals count as lost.
const STALL: Duration = Duration::from_secs(1);

struct Room {
    /// Seat id of each participant slot, so receivers can tell whose signal arrived.
    ids: [OnceLock<String>; ROOM],
    /// Signals from each slot seen by their receivers.
    acked: [AtomicU64; ROOM],
    wake: [Notify; ROOM],
}

struct Shared {
    ready: AtomicUsize,
    ready_changed: Notify,
    window_stalls: AtomicU64,
    behind: AtomicU64,
}

/// The phases the main task moves everyone through.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    Joining,
    Sending,
    Draining,
    Closing,
}

struct Sender {
    /// Seconds between this sender's signals, with `--rate`.
    period: Option<f64>,
    /// Offset of this sender's first send, so the senders do not fire in step.
    phase: f64,
    window: u64,
}

#[allow(clippy::too_many_arguments)]
async fn participant(
    ctx: Arc<Ctx>,
    shared: Arc<Shared>,
    room: Arc<Room>,
    room_name: String,
    k: usize,
    src: usize,
    sender: Sender,
    mut phase: watch::Receiver<Phase>,
) {
    let stats = ctx.stats.clone();
    let client = format!("lg{}-{src:07}", ctx.run);
    let join = join_json(&format!("p{src}"), &client, None, false);
    let ready = || {
        shared.ready.fetch_add(1, Ordering::AcqRel);
        shared.ready_changed.notify_one();
    };
    let (mut conn, joined) = match ctx.connect_join(&room_name, src, &join).await {
        Ok(pair) => pair,
        Err(f) => {
            f.record(&stats);
            ready();
            return;
        }
    };
    let you = joined["you"].as_str().unwrap_or_default().to_string();
    let _ = room.ids[k].set(you.clone());
    let mut peers: Vec<String> = joined["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_str().map(String::from))
        .collect();
    let mut is_ready = false;
    if peers.len() == ROOM - 1 {
        is_ready = true;
        ready();
    }
    let mut batch = Vec::with_capacity(1024);
    let mut sent_mine = 0u64;
    let mut forgiven = 0u64;
    let mut next = 0usize;
    let mut blocked_since: Option<TokioInstant> = None;
    let mut next_at: Option<TokioInstant> = None;
    let result: Result<(), Failure> = async {
        loop {
            let now_phase = *phase.borrow();
            if now_phase == Phase::Closing {
                break;
            }
            let sending = now_phase == Phase::Sending && !peers.is_empty();
            if sending && next_at.is_none() {
                next_at = sender
                    .period
                    .map(|_| TokioInstant::now() + Duration::from_secs_f64(sender.phase));
            }
            let outstanding = sent_mine.saturating_sub(room.acked[k].load(Ordering::Acquire) + forgiven);
            let open = outstanding < sender.window;
            if open {
                blocked_since = None;
            } else if blocked_since.is_none() {
                blocked_since = Some(TokioInstant::now());
            }
            let stall_at = blocked_since.map(|t| t + STALL);
            tokio::select! {
                inc = conn.recv() => {
                    let v = match inc? {
                        Incoming::Msg(v) => v,
                        Incoming::Closed(code) => return Err(Failure::Closed(code)),
                    };
                    match v["type"].as_str() {
                        Some("signal") => {
                            stats.received.fetch_add(1, Ordering::Relaxed);
                            if let Some(t) = v["data"]["t"].as_u64() {
                                batch.push(micros(ctx.epoch).saturating_sub(t));
                                if batch.len() >= 1024 {
                                    stats.relay_us.extend(&mut batch);
                                }
                            }
                            if let Some(from) = v["from"].as_str() {
                                if let Some(slot) = room.ids.iter().position(|id| id.get().map(String::as_str) == Some(from)) {
                                    room.acked[slot].fetch_add(1, Ordering::AcqRel);
                                    room.wake[slot].notify_one();
                                }
                            }
                        }
                        Some("peer-joined") => {
                            if let Some(id) = v["peer"]["id"].as_str() {
                                peers.push(id.to_string());
                            }
                            if !is_ready && peers.len() == ROOM - 1 {
                                is_ready = true;
                                ready();
                            }
                        }
                        _ => {}
                    }
                }
                _ = async {
                    if let Some(t) = next_at {
                        tokio::time::sleep_until(t).await
                    }
                }, if sending && open => {
                    let to = &peers[next % peers.len()];
                    next += 1;
                    conn.send(&candidate_signal(to, micros(ctx.epoch))).await?;
                    sent_mine += 1;
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    if let (Some(at), Some(period)) = (next_at.as_mut(), sender.period) {
                        *at += Duration::from_secs_f64(period);
                        let now = TokioInstant::now();
                        if *at + Duration::from_secs(1) < now {
                            // More than a second behind schedule (the generator or the server
                            // cannot keep up): skip ahead rather than burst.
                            shared.behind.fetch_add(1, Ordering::Relaxed);
                            *at = now;
                        }
                    }
                }
                _ = room.wake[k].notified(), if sending && !open => {}
                _ = async {
                    match stall_at {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                }, if sending && !open => {
                    forgiven += outstanding;
                    blocked_since = None;
                    shared.window_stalls.fetch_add(1, Ordering::Relaxed);
                }
                _ = phase.changed() => {}
            }
        }
        Ok(())
    }
    .await;
    stats.relay_us.extend(&mut batch);
    if !is_ready {
        ready();
    }
    match result {
        Ok(()) => conn.close().await,
        Err(f) => {
            if !(conn.saw_error && matches!(f, Failure::Closed(_))) {
                f.record(&stats);
            }
        }
    }
    stats.connected.fetch_sub(1, Ordering::Relaxed);
}

pub async fn run(args: &Args) -> i32 {
    let rooms = args.rooms.max(1);
    let n = rooms * ROOM;
    let secs = args.secs_or(10).max(1);
    let run = super::run_tag();
    let stats = Arc::new(Stats::default());
    let epoch = Instant::now();
    let sampler = proc::Sampler::start(
        args.pids.clone(),
        args.sample_every(500),
        epoch,
        stats.clone(),
    );
    let ctx = super::ctx(args, stats.clone(), 1, run, epoch);
    let shared = Arc::new(Shared {
        ready: AtomicUsize::new(0),
        ready_changed: Notify::new(),
        window_stalls: AtomicU64::new(0),
        behind: AtomicU64::new(0),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Joining);
    let period = args.rate.map(|r| n as f64 / r);
    let mut tasks = Vec::with_capacity(n);
    for r in 0..rooms {
        let room = Arc::new(Room {
            ids: Default::default(),
            acked: Default::default(),
            wake: Default::default(),
        });
        for k in 0..ROOM {
            let i = r * ROOM + k;
            let sender = Sender {
                period,
                phase: period.map_or(0.0, |p| p * i as f64 / n as f64),
                window: args.window,
            };
            tasks.push(tokio::spawn(participant(
                ctx.clone(),
                shared.clone(),
                room.clone(),
                format!("tp-{run}-{r}"),
                k,
                i,
                sender,
                phase_rx.clone(),
            )));
        }
    }
    // Everyone joined and knows their 5 peers (or failed trying).
    while shared.ready.load(Ordering::Acquire) < n {
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.ready_changed.notified()).await;
    }
    let joined = stats.connected();
    println!(
        "{joined} of {n} joined in {:.1} s; sending for {secs} s ({})",
        epoch.elapsed().as_secs_f64(),
        args.rate
            .map_or("as fast as the server takes them".into(), |r| format!(
                "{r} msg/s in all"
            ))
    );
    let ticks = |pids: &[u32]| -> Vec<u64> {
        pids.iter()
            .map(|p| proc::cpu_ticks(*p).unwrap_or(0))
            .collect()
    };
    let before: Reading = super::reading(&args.pids);
    let ticks0 = ticks(&args.pids);
    let (sent0, recv0) = (stats.get(&stats.sent), stats.get(&stats.received));
    let t0 = Instant::now();
    let _ = phase_tx.send(Phase::Sending);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let _ = phase_tx.send(Phase::Draining);
    let window = t0.elapsed().as_secs_f64();
    let after: Reading = super::reading(&args.pids);
    let (sent1, recv1) = (stats.get(&stats.sent), stats.get(&stats.received));
    let ticks1 = ticks(&args.pids);
    // Let what is in flight arrive (bounded: lost signals never will).
    let drain_until = Instant::now() + Duration::from_secs(3);
    while stats.get(&stats.received) < stats.get(&stats.sent) && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = phase_tx.send(Phase::Closing);
    for t in tasks {
        let _ = t.await;
    }
    let samples = sampler.snapshot();
    drop(sampler);

    let delivered = (recv1 - recv0) as f64 / window;
    let offered = (sent1 - sent0) as f64 / window;
    let cpu = proc::cpu_pct(before.cpu_ticks, after.cpu_ticks, window);
    let lost = stats
        .get(&stats.sent)
        .saturating_sub(stats.get(&stats.received));
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    stats.errors.print_table("errors by kind");
    stats.hint_rates();
    println!(
        "server CPU is in % of one core: {} % would be all {cores} cores",
        cores * 100
    );
    let mut s = Summary::new("throughput");
    s.kv("proto", args.proto.name())
        .kv("rooms", rooms)
        .kv("participants", n)
        .kv("joined", joined)
        .kv("secs", format!("{window:.1}"))
        .kv(
            "rate_target",
            args.rate.map_or("max".into(), |r| format!("{r}")),
        )
        .kv("window", args.window)
        .kv("sent_msgs_per_sec", format!("{offered:.0}"))
        .kv("delivered_msgs_per_sec", format!("{delivered:.0}"))
        .kv("signals_sent", stats.get(&stats.sent))
        .kv("signals_received", stats.get(&stats.received))
        .kv("lost", lost)
        .kv(
            "window_stalls",
            shared.window_stalls.load(Ordering::Relaxed),
        )
        .kv("behind_schedule", shared.behind.load(Ordering::Relaxed))
        .latency("relay", &stats.relay_us)
        .latency("join", &stats.join_us)
        .kv("connect_retries", stats.get(&stats.connect_retries))
        .kv("server_cpu_pct", format!("{cpu:.1}"));
    if args.pids.len() > 1 {
        for (i, pid) in args.pids.iter().enumerate() {
            let pct = proc::cpu_pct(ticks0[i], ticks1[i], window);
            s.kv(
                &format!("server_cpu_pct.{}_{pid}", proc::comm(*pid)),
                format!("{pct:.1}"),
            );
        }
    }
    s.kv("cores", cores)
        .kv("rss_end_kib", after.rss_kib)
        .kv("hwm_end_kib", after.hwm_kib)
        .kv("errors", stats.errors.total());
    s.print();
    super::write_outputs(args, &format!("throughput, {n} participants"), &samples);
    0
}
