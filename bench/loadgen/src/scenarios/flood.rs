//! `flood`: the hostile flood of issue "Prove the budget", against a real server process.
//!
//! - Tricklers (from 127.1.x.y, as tests/integration/flood.rs): each upgrades a WebSocket,
//!   begins an almost-1 MiB text frame, sends 16 KiB of it and then 1 KiB a second. The server
//!   must hold their partial frames inside its in-flight arena (pausing reads when it is spent)
//!   and cut them off at its deadlines; a trickler that is cut off comes straight back.
//! - Non-readers (127.2.x.y): each joins a room, then never reads its socket (a small receive
//!   buffer, so the kernel does not absorb megabytes first), while its room-mates (127.3.x.y,
//!   `--nonreader-senders`, each under the default per-socket rate) send it 4 KiB signals. The
//!   server's queue to it fills and it must be dropped alone; after 12 s it resumes its seat
//!   and stops reading again.
//! - A join storm (127.4.x.y): sockets connecting, joining and leaving as fast as they can, in
//!   rooms of 6.
//! - Honest participants (127.5.x.y), in rooms of 6 doing the full meeting workload, start
//!   once the flood is under way; their join latency and errors are kept apart from the
//!   hostile ones: the point of the budget is that they do not notice.
//!
//! Optionally the server runs in a cgroup v1 memory limit (`--cgroup-mib`), as a systemd
//! MemoryMax= would put it, so an overrun shows as failcnt or an OOM kill.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Semaphore};

use crate::args::Args;
use crate::cgroup::Cgroup;
use crate::client::{connect_from, source, Conn, Incoming, OpenOpts, Target};
use crate::proc::{self, Sampler};
use crate::stats::{mib, Stats, Summary};
use crate::workload::{join_json, micros, sdp_signal, Cmd, Ctx, Meeting};

/// How long a non-reader stays silent before it drops its socket and resumes its seat: past
/// the server's heartbeat timeout (10 s by default), so the server has to end it itself,
/// when its queue overflows or when the silence does.
const NONREADER_CYCLE: Duration = Duration::from_secs(12);

#[derive(Default)]
struct Counters {
    trickling: AtomicI64,
    trickling_peak: AtomicI64,
    trickles_started: AtomicU64,
    nonreader_cycles: AtomicU64,
    storm_joins: AtomicU64,
    signals_to_nonreaders: AtomicU64,
}

/// The WebSocket upgrade request, written by hand: a trickler never completes a frame, which
/// no WebSocket library would let us do.
fn upgrade_request(addr: SocketAddr, room: &str) -> String {
    format!(
        "GET /ws/{room} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

/// A masked client text frame header of `len` payload bytes, mask key 0 (the payload goes as
/// it is).
fn masked_text_header(len: u64) -> Vec<u8> {
    let mut h = vec![0x81u8];
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len < 65536 {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// What the server sent a trickler, frame by frame (server frames are unmasked): its pings
/// are skipped (a trickler cannot answer mid-frame, which is part of the attack), a close
/// frame gives its code. None while no close frame is complete.
fn close_code(buf: &[u8]) -> Option<Option<u16>> {
    let mut at = 0;
    while buf.len() >= at + 2 {
        let opcode = buf[at] & 0x0f;
        let (len, head) = match buf[at + 1] & 0x7f {
            126 if buf.len() >= at + 4 => {
                (u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize, 4)
            }
            127 if buf.len() >= at + 10 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[at + 2..at + 10]);
                (u64::from_be_bytes(b) as usize, 10)
            }
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if buf.len() < at + head + len {
            return None;
        }
        if opcode == 0x8 {
            let p = &buf[at + head..at + head + len];
            return Some((p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])));
        }
        at += head + len;
    }
    None
}

async fn trickler(
    addr: SocketAddr,
    n: usize,
    gate: Arc<Semaphore>,
    stats: Arc<Stats>,
    c: Arc<Counters>,
    mut end: watch::Receiver<bool>,
) {
    let src = source(1, n);
    while !*end.borrow() {
        let permit = gate.acquire().await.expect("gate never closed");
        let mut stream = match connect_from(src, addr, None).await {
            Ok(s) => s,
            Err(e) => {
                stats.error("trickler:connect", || e.detail());
                drop(permit);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let head = async {
            stream
                .write_all(upgrade_request(addr, &format!("flood-{}", n % 300)).as_bytes())
                .await?;
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
                stream.read_exact(&mut byte).await?;
                head.push(byte[0]);
            }
            Ok::<Vec<u8>, std::io::Error>(head)
        };
        let head = tokio::time::timeout(Duration::from_secs(10), head).await;
        drop(permit);
        let head = match head {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                stats.error("trickler:handshake_io", || e.to_string());
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => {
                stats.error("trickler:handshake_timeout", String::new);
                continue;
            }
        };
        if !head.starts_with(b"HTTP/1.1 101") {
            let status = String::from_utf8_lossy(&head[..head.len().min(12)]).to_string();
            let code = status.split_whitespace().nth(1).unwrap_or("?").to_string();
            stats.error(&format!("trickler:http_{code}"), || status);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let mut first = masked_text_header(1_000_000);
        first.extend_from_slice(&[b'x'; 16 * 1024]);
        if stream.write_all(&first).await.is_err() {
            stats.error("trickler:write", String::new);
            continue;
        }
        c.trickles_started.fetch_add(1, Ordering::Relaxed);
        let now = c.trickling.fetch_add(1, Ordering::Relaxed) + 1;
        c.trickling_peak.fetch_max(now, Ordering::Relaxed);
        let started = Instant::now();
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        let outcome = loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    // A write that cannot finish in time means the server stopped reading (its
                    // in-flight arena is spent): that is the design, keep the socket.
                    let write = tokio::time::timeout(Duration::from_millis(100), stream.write_all(&[b'x'; 1024]));
                    if let Ok(Err(e)) = write.await {
                        break format!("trickler:write_failed ({})", e.kind());
                    }
                }
                r = stream.read(&mut buf) => {
                    match r {
                        Ok(0) => break "trickler:closed_none".into(),
                        Ok(k) => {
                            got.extend_from_slice(&buf[..k]);
                            match close_code(&got) {
                                Some(Some(code)) => break format!("trickler:closed_{code}"),
                                Some(None) => break "trickler:closed_no_code".into(),
                                None if got.len() > 64 * 1024 => break "trickler:unexpected_bytes".into(),
                                None => {}
                            }
                        }
                        Err(e) => break format!("trickler:read_failed ({})", e.kind()),
                    }
                }
                _ = end.changed() => break String::new(),
            }
        };
        c.trickling.fetch_sub(1, Ordering::Relaxed);
        if !outcome.is_empty() {
            let held = started.elapsed().as_secs_f64();
            stats.error(&outcome, || format!("after {held:.1} s"));
        }
    }
}

/// One of the room-mates sending 4 KiB signals to the non-reader of its room, at a rate
/// under the server's default per-socket limit (so it is never `slow_down`ed itself).
async fn nonreader_sender(
    ctx: Arc<Ctx>,
    room: String,
    index: usize,
    rate: f64,
    c: Arc<Counters>,
    mut end: watch::Receiver<bool>,
) {
    let join = join_json("sender", &format!("lg{}-s{index:06}", ctx.run), None, false);
    let Ok((mut conn, joined)) = connect_join_at(&ctx, &room, 3, index, &join, None).await else {
        return;
    };
    let is_target = |p: &serde_json::Value| p["name"] == "nonreader";
    let mut target: Option<String> = joined["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| is_target(p))
        .and_then(|p| p["id"].as_str().map(String::from));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    loop {
        tokio::select! {
            inc = conn.recv() => match inc {
                Ok(Incoming::Msg(v)) => {
                    if v["type"] == "peer-joined" && is_target(&v["peer"]) {
                        target = v["peer"]["id"].as_str().map(String::from);
                    }
                }
                Ok(Incoming::Closed(code)) => {
                    if !conn.saw_error {
                        let code = code.map_or("none".into(), |c| c.to_string());
                        ctx.stats.error(&format!("sender:closed_{code}"), String::new);
                    }
                    break;
                }
                Err(e) => {
                    ctx.stats.error("sender:io", || e.detail());
                    break;
                }
            },
            _ = tick.tick() => {
                if let Some(to) = &target {
                    if conn.send(&sdp_signal(to, "offer", micros(ctx.epoch))).await.is_err() {
                        ctx.stats.error("sender:send", String::new);
                        break;
                    }
                    c.signals_to_nonreaders.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ = end.changed() => {
                let _ = conn.leave().await;
                break;
            }
        }
    }
    ctx.stats.connected.fetch_sub(1, Ordering::Relaxed);
}

/// A non-reader and the room-mates that send to it, in their own room. One sender at the
/// default per-socket rate (60/s) cannot outpace the kernel: the server's socket send buffer
/// grows to 4 MiB (tcp_wmem) before its own queue sees a byte, and the 10 s heartbeat ends the
/// silent socket first. Five of them (the room's other seats) fill the queue in seconds.
async fn nonreader_pair(
    ctx: Arc<Ctx>,
    k: usize,
    (senders, rate): (usize, f64),
    c: Arc<Counters>,
    end: watch::Receiver<bool>,
) {
    let room = format!("nr-{}-{k}", ctx.run);
    let sender_tasks: Vec<_> = (0..senders)
        .map(|s| {
            tokio::spawn(nonreader_sender(
                ctx.clone(),
                room.clone(),
                k * 5 + s,
                rate,
                c.clone(),
                end.clone(),
            ))
        })
        .collect();
    let client = format!("lg{}-n{k:06}", ctx.run);
    let mut token: Option<String> = None;
    let mut end = end;
    while !*end.borrow() {
        let join = join_json("nonreader", &client, token.as_deref(), true);
        let opened = connect_join_at(&ctx, &room, 2, k, &join, Some(4096)).await;
        let Ok((conn, joined)) = opened else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        token = joined["token"].as_str().map(String::from);
        c.nonreader_cycles.fetch_add(1, Ordering::Relaxed);
        // Never read: the server's pings go unanswered and its queue to us fills.
        tokio::select! {
            _ = tokio::time::sleep(NONREADER_CYCLE) => {}
            _ = end.changed() => {}
        }
        ctx.stats.connected.fetch_sub(1, Ordering::Relaxed);
        conn.abandon();
    }
    for t in sender_tasks {
        let _ = t.await;
    }
}

/// Connect and join from source `block`/`index` with optional SO_RCVBUF, recording failures.
async fn connect_join_at(
    ctx: &Ctx,
    room: &str,
    block: u8,
    index: usize,
    join: &str,
    rcvbuf: Option<u32>,
) -> Result<(Conn, serde_json::Value), ()> {
    let opts = OpenOpts { rcvbuf, ..ctx.opts };
    let started = Instant::now();
    let result: Result<_, crate::client::Failure> = async {
        let mut conn = Conn::open(ctx.target, room, source(block, index), opts, &ctx.stats).await?;
        let joined = conn.join(join).await?;
        Ok((conn, joined))
    }
    .await;
    match result {
        Ok(pair) => {
            ctx.stats.join_us.push(started.elapsed().as_micros() as u64);
            ctx.stats.joins.fetch_add(1, Ordering::Relaxed);
            ctx.stats.connected.fetch_add(1, Ordering::Relaxed);
            Ok(pair)
        }
        Err(f) => {
            f.record(&ctx.stats);
            Err(())
        }
    }
}

/// Joins and leaves, as fast as it can, until the end.
async fn storm_worker(ctx: Arc<Ctx>, j: usize, c: Arc<Counters>, end: watch::Receiver<bool>) {
    let room = format!("storm-{}-{}", ctx.run, j / 6);
    let client = format!("lg{}-j{j:06}", ctx.run);
    let join = join_json("storm", &client, None, false);
    while !*end.borrow() {
        match connect_join_at(&ctx, &room, 4, j, &join, None).await {
            Ok((conn, _)) => {
                c.storm_joins.fetch_add(1, Ordering::Relaxed);
                ctx.stats.connected.fetch_sub(1, Ordering::Relaxed);
                if let Err(f) = conn.leave().await {
                    f.record(&ctx.stats);
                }
            }
            Err(()) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The highest value each of a few /metrics gauges reached, polled once a second.
#[derive(Default)]
struct Peaks {
    heap: f64,
    in_flight: f64,
    outbound: f64,
    sockets: f64,
    polls: u64,
    failed_polls: u64,
}

pub async fn run(args: &Args) -> i32 {
    let secs = args.secs_or(30);
    let run = super::run_tag();
    let honest = Arc::new(Stats::default());
    let hostile = Arc::new(Stats::default());
    let counters = Arc::new(Counters::default());
    let epoch = Instant::now();
    let cgroup = match args.cgroup_mib {
        Some(mib_limit) => match Cgroup::create("videomeet-flood", mib_limit, &args.pids) {
            Ok(g) => {
                println!(
                    "server moved into cgroup videomeet-flood, memory.limit_in_bytes {} MiB{}",
                    mib_limit,
                    if g.moved_charges() {
                        ", its existing pages charged to it"
                    } else {
                        " (existing pages stay charged where they were: max_usage is a lower bound)"
                    }
                );
                Some(g)
            }
            Err(e) => {
                eprintln!("loadgen: cgroup: {e}");
                return 2;
            }
        },
        None => None,
    };
    let metrics_before = crate::metrics::fetch(args.addr).await;
    let sampler = Sampler::start(
        args.pids.clone(),
        args.sample_every(500),
        epoch,
        honest.clone(),
    );
    let (end_tx, end_rx) = watch::channel(false);
    let target = Target {
        addr: args.addr,
        proto: crate::proto::Proto::VideoMeet,
    };

    // /metrics once a second for the arenas' peaks (the heap peak the server keeps itself).
    let peaks = Arc::new(std::sync::Mutex::new(Peaks::default()));
    let poller = {
        let (peaks, addr, mut end) = (peaks.clone(), args.addr, end_rx.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = end.changed() => break,
                }
                let m = crate::metrics::fetch(addr).await;
                let mut p = peaks.lock().expect("not poisoned");
                p.polls += 1;
                let Some(m) = m else {
                    p.failed_polls += 1;
                    continue;
                };
                let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
                p.heap = p.heap.max(get("videomeet_heap_bytes"));
                p.in_flight = p
                    .in_flight
                    .max(get("videomeet_arena_used{arena=\"in_flight\"}"));
                p.outbound = p
                    .outbound
                    .max(get("videomeet_arena_used{arena=\"outbound\"}"));
                p.sockets = p.sockets.max(get("videomeet_open_sockets"));
            }
        })
    };

    let mut hostile_tasks = Vec::new();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency));
    for n in 0..args.tricklers {
        hostile_tasks.push(tokio::spawn(trickler(
            args.addr,
            n,
            gate.clone(),
            hostile.clone(),
            counters.clone(),
            end_rx.clone(),
        )));
    }
    let hostile_ctx = super::ctx(args, hostile.clone(), 2, run, epoch);
    for k in 0..args.nonreaders {
        hostile_tasks.push(tokio::spawn(nonreader_pair(
            hostile_ctx.clone(),
            k,
            (args.nonreader_senders, args.nonreader_rate),
            counters.clone(),
            end_rx.clone(),
        )));
    }
    for j in 0..args.storm {
        hostile_tasks.push(tokio::spawn(storm_worker(
            hostile_ctx.clone(),
            j,
            counters.clone(),
            end_rx.clone(),
        )));
    }
    // The honest people arrive once most tricklers are in (or after 15 s at most).
    let want = (args.tricklers * 9 / 10) as u64;
    let wait_until = Instant::now() + Duration::from_secs(15);
    while counters.trickles_started.load(Ordering::Relaxed) < want && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "{:.1} s: {} tricklers mid-frame, {} non-reader joins, {} storm joins; honest participants start",
        epoch.elapsed().as_secs_f64(),
        counters.trickling.load(Ordering::Relaxed),
        counters.nonreader_cycles.load(Ordering::Relaxed),
        counters.storm_joins.load(Ordering::Relaxed)
    );
    let honest_ctx = Arc::new(Ctx {
        target,
        stats: honest.clone(),
        gate: Arc::new(Semaphore::new(args.connect_concurrency)),
        epoch,
        opts: OpenOpts {
            retries: args.connect_retries,
            rcvbuf: None,
        },
        churn: args.churn,
        block: 5,
        run,
    });
    let meetings = args.honest.div_ceil(6);
    let mut honest_tasks = Vec::new();
    for m in 0..meetings {
        let members = 6.min(args.honest - m * 6);
        let (ctx, mut end) = (honest_ctx.clone(), end_rx.clone());
        honest_tasks.push(tokio::spawn(async move {
            let meeting = Meeting::spawn(&ctx, format!("honest-{}-{m}", ctx.run), members, m * 6);
            let complete = meeting.workload(&ctx).await;
            let _ = end.wait_for(|e| *e).await;
            meeting.end(Cmd::Leave).await;
            complete
        }));
    }
    let flood_end = epoch + Duration::from_secs(secs);
    tokio::time::sleep_until(flood_end.into()).await;
    let sockets_at_end = crate::metrics::fetch(args.addr).await;
    let _ = end_tx.send(true);
    let mut complete = 0;
    for t in honest_tasks {
        complete += usize::from(t.await.unwrap_or(false));
    }
    for t in hostile_tasks {
        let _ = t.await;
    }
    let _ = poller.await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alive: Vec<bool> = args.pids.iter().map(|p| proc::alive(*p)).collect();
    let metrics_after = crate::metrics::fetch(args.addr).await;
    let peak_hwm = sampler.peak_hwm().max(super::reading(&args.pids).hwm_kib);
    let samples = sampler.snapshot();
    drop(sampler);
    let cg = cgroup.map(|g| {
        let r = g.report();
        if let Err(e) = g.remove() {
            eprintln!("loadgen: cgroup: {e}");
        }
        r
    });

    if let Some(m) = &metrics_after {
        crate::metrics::print(m);
    }
    println!("honest participants:");
    honest.errors.print_table("  honest errors by kind");
    println!("hostile sockets:");
    hostile.errors.print_table("  hostile outcomes by kind");
    let metric = |m: &Option<std::collections::BTreeMap<String, f64>>, k: &str| {
        m.as_ref().and_then(|m| m.get(k).copied())
    };
    let budget = metric(&metrics_after, "videomeet_budget_bytes")
        .or(metric(&metrics_before, "videomeet_budget_bytes"));
    let heap_peak = metric(&metrics_after, "videomeet_heap_peak_bytes");
    let (_, _, p99, _) = honest.join_us.summary();
    let all_alive = alive.iter().all(|a| *a);
    let p = peaks.lock().expect("not poisoned");
    let mut s = Summary::new("flood");
    s.kv("secs", secs)
        .kv("tricklers", args.tricklers)
        .kv("nonreaders", args.nonreaders)
        .kv("storm", args.storm)
        .kv("honest", args.honest)
        .kv(
            "trickles_started",
            counters.trickles_started.load(Ordering::Relaxed),
        )
        .kv(
            "tricklers_mid_frame_peak",
            counters.trickling_peak.load(Ordering::Relaxed),
        )
        .kv(
            "nonreader_joins",
            counters.nonreader_cycles.load(Ordering::Relaxed),
        )
        .kv(
            "signals_to_nonreaders",
            counters.signals_to_nonreaders.load(Ordering::Relaxed),
        )
        .kv("storm_joins", counters.storm_joins.load(Ordering::Relaxed))
        .kv("hostile_errors", hostile.errors.total())
        .kv(
            "honest_meetings_complete",
            format!("{complete} of {meetings}"),
        )
        .latency("honest_join", &honest.join_us)
        .kv(
            "honest_join_p99_under_1s",
            if p99 < 1000.0 { "yes" } else { "no" },
        )
        .latency("honest_relay", &honest.relay_us)
        .kv("honest_errors", honest.errors.total())
        .kv("hwm_peak_kib", peak_hwm)
        .kv("hwm_peak_mib", mib(peak_hwm));
    if let Some(b) = budget {
        s.kv("budget_mib", format!("{:.0}", b / 1048576.0)).kv(
            "hwm_peak_over_budget",
            format!("{:.3}", peak_hwm as f64 * 1024.0 / b),
        );
    }
    if let Some(h) = heap_peak {
        s.kv("server_heap_peak_mib", format!("{:.2}", h / 1048576.0));
    }
    if let Some(c) = metric(&metrics_after, "videomeet_heap_ceiling_bytes") {
        s.kv("server_heap_ceiling_mib", format!("{:.2}", c / 1048576.0));
    }
    s.kv(
        "server_heap_polled_peak_mib",
        format!("{:.2}", p.heap / 1048576.0),
    )
    .kv(
        "in_flight_arena_peak_mib",
        format!("{:.2}", p.in_flight / 1048576.0),
    )
    .kv(
        "outbound_arena_peak_mib",
        format!("{:.2}", p.outbound / 1048576.0),
    )
    .kv("open_sockets_peak", p.sockets)
    .kv(
        "metrics_polls_failed",
        format!("{} of {}", p.failed_polls, p.polls),
    );
    if let Some(v) = metric(&sockets_at_end, "videomeet_open_sockets") {
        s.kv("open_sockets_at_end", v);
    }
    for (key, name) in [
        (
            "slow_clients_dropped",
            "videomeet_slow_clients_dropped_total",
        ),
        ("frames_rejected", "videomeet_frames_rejected_total"),
        (
            "messages_dropped_rate",
            "videomeet_messages_dropped_rate_total",
        ),
    ] {
        if let (Some(a), b) = (metric(&metrics_after, name), metric(&metrics_before, name)) {
            s.kv(key, a - b.unwrap_or(0.0));
        }
    }
    if let Some(r) = &cg {
        s.kv("cgroup_limit_mib", r.limit_bytes >> 20)
            .kv(
                "cgroup_max_usage_mib",
                format!("{:.2}", r.max_usage_bytes as f64 / 1048576.0),
            )
            .kv("cgroup_failcnt", r.failcnt)
            .kv("cgroup_oom_kill", r.oom_kill);
    }
    s.kv("server_alive", if all_alive { "yes" } else { "no" })
        .kv("crashes", alive.iter().filter(|a| !**a).count());
    s.print();
    super::write_outputs(args, "flood", &samples);
    i32::from(!all_alive || honest.errors.total() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_helpers() {
        assert_eq!(masked_text_header(5), vec![0x81, 0x85, 0, 0, 0, 0]);
        assert_eq!(masked_text_header(1_000_000)[1], 0x80 | 127);
        assert_eq!(close_code(&[0x88, 0x02, 0x03, 0xf0]), Some(Some(1008)));
        // A ping first, then the close.
        assert_eq!(
            close_code(&[0x89, 0x00, 0x88, 0x02, 0x03, 0xf0]),
            Some(Some(1008))
        );
        assert_eq!(close_code(&[0x89, 0x00]), None);
        assert_eq!(close_code(&[0x88, 0x00]), Some(None));
        assert_eq!(close_code(&[0x88, 0x02, 0x03]), None);
    }
}
