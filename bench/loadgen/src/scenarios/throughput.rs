//! `throughput`: rooms of 6 joined, then every participant sends ~200 B candidate-like signals
//! round-robin to its 5 peers, each stamped with its send time.
//!
//! Without `--rate`, as fast as the server takes them, with a bounded window per sender: at
//! most `--window` of its signals not yet seen by their receivers (the protocol has no echo, so
//! receivers count what they got from each sender in shared atomics, and the sender waits on
//! them). A receiver then has at most about `--window` frames queued towards it, far from the
//! server's per-socket outbound cap (2 MiB, 256 frames), whose overflow would drop the socket.
//! With `--rate`, that total rate is spread evenly across senders (each its own evenly spaced
//! schedule, phases staggered), kept by one pacer thread (crate::pacer) rather than 600 tokio
//! timers of 1 ms resolution, the window still guarding against overload. Each signal's `t` is
//! the time it was actually written, so relay latency leaves out how late the generator sent;
//! that lateness against the schedule is reported apart (`generator_lag_*`), and so is how long
//! a woken generator task waits to run (`generator_wake_*`, the receive side's share).
//!
//! The server's own share comes from its `/metrics` (`videomeet_relay_seconds`, read before and
//! after the timed phase): `server_relay_*`, upper bounds of its histogram's buckets.
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
use crate::metrics;
use crate::pacer::Pacer;
use crate::proc::{self, Reading};
use crate::stats::{Latencies, Stats, Summary};
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
    /// With `--rate`: how late each signal was written against its schedule, µs.
    lag_us: Latencies,
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
    /// With `--rate`: the schedule, and this sender's place in it.
    pacer: Option<Arc<Pacer>>,
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
    let mut lags = Vec::with_capacity(1024);
    let mut sent_mine = 0u64;
    let mut forgiven = 0u64;
    let mut next = 0usize;
    let mut blocked_since: Option<TokioInstant> = None;
    // With `--rate`: the index of this sender's next signal in the schedule.
    let mut slot = 0u64;
    let result: Result<(), Failure> = async {
        loop {
            let now_phase = *phase.borrow();
            if now_phase == Phase::Closing {
                break;
            }
            let sending = now_phase == Phase::Sending && !peers.is_empty();
            let due = sender.pacer.as_ref().is_none_or(|p| p.granted(src) > slot);
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
                _ = std::future::ready(()), if sending && open && due => {
                    let to = &peers[next % peers.len()];
                    next += 1;
                    // The stamp is the actual send time: relay latency starts here.
                    let t = micros(ctx.epoch);
                    conn.send(&candidate_signal(to, t)).await?;
                    sent_mine += 1;
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    if let Some(pacer) = &sender.pacer {
                        lags.push(t.saturating_sub(pacer.due_us(src, slot)));
                        if lags.len() >= 1024 {
                            shared.lag_us.extend(&mut lags);
                        }
                        slot += 1;
                        if pacer.due_us(src, slot) + 1_000_000 < micros(ctx.epoch) {
                            // More than a second behind schedule (the generator or the server
                            // cannot keep up): skip ahead rather than burst.
                            shared.behind.fetch_add(1, Ordering::Relaxed);
                            slot = slot.max(pacer.current(src));
                        }
                    }
                }
                _ = async {
                    match &sender.pacer {
                        Some(pacer) => pacer.notified(src).await,
                        None => std::future::pending().await,
                    }
                }, if sending && open && !due => {}
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
    shared.lag_us.extend(&mut lags);
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

/// `server_relay_n`, `server_relay_p50_ms`, `server_relay_p99_ms` from the server's
/// `videomeet_relay_seconds` over the run: each is the upper bound of the bucket the
/// percentile falls in (`inf` past the last bound), not a measured value; `n/a` for a server
/// without the histogram (the Socket.io reference).
fn server_relay(
    s: &mut Summary,
    before: Option<&metrics::Values>,
    after: Option<&metrics::Values>,
) {
    let diff = match (before, after) {
        (Some(b), Some(a)) => metrics::histogram_diff(b, a, "videomeet_relay_seconds"),
        _ => Vec::new(),
    };
    let total = diff.last().map_or(0.0, |(_, c)| *c);
    if total == 0.0 {
        s.kv("server_relay_n", "n/a")
            .kv("server_relay_p50_ms", "n/a")
            .kv("server_relay_p99_ms", "n/a");
        return;
    }
    let bound_ms = |p: f64| {
        let (le, _) = diff
            .iter()
            .find(|(_, c)| *c >= p * total)
            .expect("the +Inf bucket holds every count");
        if le.is_finite() {
            // Whole microseconds, so 0.00025 s prints as 0.25 and not 0.25000000000000006.
            format!("{}", (le * 1e6).round() / 1000.0)
        } else {
            "inf".into()
        }
    };
    s.kv("server_relay_n", total)
        .kv("server_relay_p50_ms", bound_ms(0.50))
        .kv("server_relay_p99_ms", bound_ms(0.99))
        .kv("server_relay_is", "bucket upper bounds");
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
        lag_us: Latencies::default(),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Joining);
    let pacer = args.rate.map(|r| Pacer::new(r, n, epoch));
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
                pacer: pacer.clone(),
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
    let server_before = metrics::fetch(args.addr).await;
    let before: Reading = super::reading(&args.pids);
    let ticks0 = ticks(&args.pids);
    let (sent0, recv0) = (stats.get(&stats.sent), stats.get(&stats.received));
    let wake_us = Arc::new(Latencies::default());
    let pacing = pacer.as_ref().map(|p| {
        let probe = tokio::spawn(p.clone().wake_probe(wake_us.clone()));
        (p.start(), probe)
    });
    let t0 = Instant::now();
    let _ = phase_tx.send(Phase::Sending);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let _ = phase_tx.send(Phase::Draining);
    let window = t0.elapsed().as_secs_f64();
    if let (Some(p), Some((thread, probe))) = (&pacer, pacing) {
        p.stop();
        let _ = thread.join();
        let _ = probe.await;
    }
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
    // After the drain, so the server's count includes the signals the generator counted.
    let server_after = metrics::fetch(args.addr).await;
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
        .latency("relay", &stats.relay_us);
    if args.rate.is_some() {
        s.latency("generator_lag", &shared.lag_us)
            .latency("generator_wake", &wake_us);
    }
    server_relay(&mut s, server_before.as_ref(), server_after.as_ref());
    s.latency("join", &stats.join_us)
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
