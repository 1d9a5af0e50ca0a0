//! loadgen: simulated VideoMeet meetings over the real protocol, with the server's memory sampled
//! from /proc. See docs/BENCHMARKS.md for the commands and what they printed.
//!
//! Usage:
//!   loadgen idle  --pid PID [--secs S]
//!   loadgen scale --addr HOST:PORT --pid PID --participants N [--room-size 6] [--hold SECS]
//!                 [--csv FILE] [--svg FILE]
//!
//! `scale` opens N sockets from distinct 127.x.y.z source addresses (so per-IP caps see distinct
//! hosts), joins them into rooms of six, and runs the meeting workload once: every pair exchanges
//! an offer and an answer of 4 KiB and ten ICE candidates of 200 B, then everyone sends a mute
//! update; then all hold their sockets open (answering pings) while the server's RSS is sampled.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

const OFFER_BYTES: usize = 4096;
const CANDIDATE_BYTES: usize = 200;
const CANDIDATES: usize = 10;

struct Args {
    cmd: String,
    addr: SocketAddr,
    pid: u32,
    participants: usize,
    room_size: usize,
    hold: u64,
    secs: u64,
    csv: Option<String>,
    svg: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().ok_or("usage: loadgen idle|scale [options]")?;
    let mut args = Args {
        cmd,
        addr: "127.0.0.1:8080".parse().expect("valid"),
        pid: 0,
        participants: 600,
        room_size: 6,
        hold: 20,
        secs: 5,
        csv: None,
        svg: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--pid" => args.pid = value()?.parse().map_err(|e| format!("--pid: {e}"))?,
            "--participants" => args.participants = value()?.parse().map_err(|e| format!("{e}"))?,
            "--room-size" => args.room_size = value()?.parse().map_err(|e| format!("{e}"))?,
            "--hold" => args.hold = value()?.parse().map_err(|e| format!("{e}"))?,
            "--secs" => args.secs = value()?.parse().map_err(|e| format!("{e}"))?,
            "--csv" => args.csv = Some(value()?),
            "--svg" => args.svg = Some(value()?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if args.pid == 0 {
        return Err("--pid PID of the videomeet server is required".into());
    }
    Ok(args)
}

/// VmRSS and VmHWM of a process, in KiB.
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn raise_fd_limit() {
    // SAFETY: plain libc calls on a stack struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[derive(Default)]
struct Stats {
    join_us: Mutex<Vec<u64>>,
    relay_us: Mutex<Vec<u64>>,
    sent: AtomicU64,
    received: AtomicU64,
    errors: Mutex<Vec<String>>,
    connected: AtomicU64,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary(name: &str, values: &Mutex<Vec<u64>>) -> String {
    let mut v = values.lock().expect("not poisoned").clone();
    v.sort_unstable();
    format!(
        "{name}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        v.len(),
        percentile(&v, 0.5) as f64 / 1000.0,
        percentile(&v, 0.99) as f64 / 1000.0,
        v.last().copied().unwrap_or(0) as f64 / 1000.0
    )
}

/// The source address of participant `i`: 127.1.0.1 onwards, 250 per /24.
fn source(i: usize) -> SocketAddr {
    let a = 1 + (i / 62_500) as u8;
    let b = ((i / 250) % 250) as u8;
    let c = (i % 250 + 1) as u8;
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, a, b, c), 0))
}

async fn participant(
    i: usize,
    room: String,
    args: Arc<Args>,
    epoch: Instant,
    stats: Arc<Stats>,
    all_joined: Arc<tokio::sync::Barrier>,
    hold_until: Arc<tokio::sync::watch::Receiver<bool>>,
) {
    let result = async {
        let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        socket.bind(source(i)).map_err(|e| format!("bind: {e}"))?;
        let tcp = socket
            .connect(args.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let url = format!("ws://{}/ws/{room}", args.addr);
        let started = Instant::now();
        let (mut ws, _) = tokio_tungstenite::client_async(url, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        stats.connected.fetch_add(1, Ordering::Relaxed);
        let join = json!({"type":"join","name":format!("p{i}"),"client":format!("loadgen-{i:08}"),"audio":true,"video":true});
        ws.send(Message::text(join.to_string()))
            .await
            .map_err(|e| format!("send: {e}"))?;
        let joined: Value = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
                    if v["type"] == "joined" {
                        break v;
                    }
                    if v["type"] == "error" {
                        return Err(format!("join refused: {}", v["code"]));
                    }
                }
                Some(Ok(_)) => continue,
                other => return Err(format!("closed before joined: {other:?}")),
            }
        };
        stats
            .join_us
            .lock()
            .expect("not poisoned")
            .push(started.elapsed().as_micros() as u64);
        let stamp = || epoch.elapsed().as_micros() as u64;
        let sdp = "a".repeat(OFFER_BYTES);
        let cand = "c".repeat(CANDIDATE_BYTES);
        // The newcomer offers to everyone already there.
        for peer in joined["peers"].as_array().into_iter().flatten() {
            let to = peer["id"].clone();
            let offer = json!({"type":"signal","to":to,"data":{"t":stamp(),"description":{"type":"offer","sdp":sdp}}});
            ws.send(Message::text(offer.to_string()))
                .await
                .map_err(|e| e.to_string())?;
            stats.sent.fetch_add(1, Ordering::Relaxed);
            for _ in 0..CANDIDATES {
                let c = json!({"type":"signal","to":to,"data":{"t":stamp(),"candidate":{"candidate":cand}}});
                ws.send(Message::text(c.to_string()))
                    .await
                    .map_err(|e| e.to_string())?;
                stats.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        ws.send(Message::text(json!({"type":"update","audio":false}).to_string()))
            .await
            .map_err(|e| e.to_string())?;
        let mut barrier = Some(all_joined.clone());
        let mut hold = (*hold_until).clone();
        loop {
            tokio::select! {
                _ = async { if let Some(b) = barrier.take() { b.wait().await; } else { std::future::pending::<()>().await } } => {}
                _ = hold.changed() => break,
                frame = ws.next() => {
                    let Some(Ok(frame)) = frame else {
                        return Err("socket ended while holding".into());
                    };
                    let Message::Text(t) = frame else { continue };
                    let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
                    if v["type"] != "signal" {
                        continue;
                    }
                    stats.received.fetch_add(1, Ordering::Relaxed);
                    if let Some(t) = v["data"]["t"].as_u64() {
                        stats.relay_us.lock().expect("not poisoned").push(stamp().saturating_sub(t));
                    }
                    if v["data"]["description"]["type"] == "offer" {
                        let to = v["from"].clone();
                        let answer = json!({"type":"signal","to":to,"data":{"t":stamp(),"description":{"type":"answer","sdp":sdp}}});
                        ws.send(Message::text(answer.to_string())).await.map_err(|e| e.to_string())?;
                        stats.sent.fetch_add(1, Ordering::Relaxed);
                        for _ in 0..CANDIDATES {
                            let c = json!({"type":"signal","to":to,"data":{"t":stamp(),"candidate":{"candidate":cand}}});
                            ws.send(Message::text(c.to_string())).await.map_err(|e| e.to_string())?;
                            stats.sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        let _ = ws.close(None).await;
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = result {
        stats.errors.lock().expect("not poisoned").push(e);
        // Still count in on the barrier so the others are not held forever.
        all_joined.wait().await;
    }
}

fn write_outputs(args: &Args, samples: &[(f64, u64, u64, u64)]) {
    if let Some(path) = &args.csv {
        let mut csv = String::from("seconds,connected,vmrss_kib,vmhwm_kib\n");
        for (t, c, rss, hwm) in samples {
            csv.push_str(&format!("{t:.1},{c},{rss},{hwm}\n"));
        }
        std::fs::write(path, csv).expect("csv written");
    }
    if let Some(path) = &args.svg {
        let (w, h, pad) = (640.0, 320.0, 48.0);
        let tmax = samples.last().map_or(1.0, |s| s.0).max(1.0);
        let ymax = samples
            .iter()
            .map(|s| s.2.max(s.3))
            .max()
            .unwrap_or(1)
            .max(1) as f64
            / 1024.0;
        let x = |t: f64| pad + (w - 2.0 * pad) * t / tmax;
        let y = |kib: u64| h - pad - (h - 2.0 * pad) * (kib as f64 / 1024.0) / ymax;
        let line = |pick: fn(&(f64, u64, u64, u64)) -> u64| {
            samples
                .iter()
                .map(|s| format!("{:.1},{:.1}", x(s.0), y(pick(s))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let svg = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="{pad}" y="20">videomeet RSS over time, {n} participants (MiB)</text>
<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="#888"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="#888"/>
<text x="4" y="{pad}">{ymax:.0}</text><text x="4" y="{b}">0</text><text x="{r}" y="{bl}" text-anchor="end">{tmax:.0} s</text>
<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{rss}"/>
<polyline fill="none" stroke="#dc2626" stroke-dasharray="4 3" points="{hwm}"/>
<text x="{r}" y="{pad}" text-anchor="end" fill="#2563eb">VmRSS</text><text x="{r}" y="{p2}" text-anchor="end" fill="#dc2626">VmHWM</text>
</svg>
"##,
            n = args.participants,
            b = h - pad,
            r = w - pad,
            bl = h - pad + 16.0,
            p2 = pad + 16.0,
            rss = line(|s| s.2),
            hwm = line(|s| s.3),
        );
        std::fs::write(path, svg).expect("svg written");
    }
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    raise_fd_limit();
    if args.cmd == "idle" {
        tokio::time::sleep(Duration::from_secs(args.secs)).await;
        let (rss, hwm) = rss_kib(args.pid).expect("server pid readable");
        println!(
            "idle: VmRSS {rss} KiB ({:.2} MiB), VmHWM {hwm} KiB ({:.2} MiB)",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
        return;
    }
    if args.cmd != "scale" {
        eprintln!("loadgen: unknown command {} (idle, scale)", args.cmd);
        std::process::exit(2);
    }
    let stats = Arc::new(Stats::default());
    let epoch = Instant::now();
    let barrier = Arc::new(tokio::sync::Barrier::new(args.participants + 1));
    let (hold_tx, hold_rx) = tokio::sync::watch::channel(false);
    let hold_rx = Arc::new(hold_rx);
    let sampler_stats = stats.clone();
    let sampler_args = args.clone();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler_samples = samples.clone();
    let sampler = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            if let Some((rss, hwm)) = rss_kib(sampler_args.pid) {
                sampler_samples.lock().expect("not poisoned").push((
                    epoch.elapsed().as_secs_f64(),
                    sampler_stats.connected.load(Ordering::Relaxed),
                    rss,
                    hwm,
                ));
            }
        }
    });
    let mut tasks = Vec::with_capacity(args.participants);
    for i in 0..args.participants {
        let room = format!("load-{}", i / args.room_size);
        tasks.push(tokio::spawn(participant(
            i,
            room,
            args.clone(),
            epoch,
            stats.clone(),
            barrier.clone(),
            hold_rx.clone(),
        )));
        // Joins arrive as a brisk stream, not one burst, as people do.
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    barrier.wait().await;
    let ramp = epoch.elapsed();
    // Let the last answers and candidates land before holding.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected_rss = rss_kib(args.pid);
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let held_rss = rss_kib(args.pid);
    let _ = hold_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    sampler.abort();
    let elapsed = epoch.elapsed().as_secs_f64();
    let errors = stats.errors.lock().expect("not poisoned").clone();
    println!(
        "participants: {} in rooms of {} ({} connected), ramp {:.2} s",
        args.participants,
        args.room_size,
        stats.connected.load(Ordering::Relaxed),
        ramp.as_secs_f64()
    );
    println!("{}", summary("join latency", &stats.join_us));
    println!("{}", summary("relay latency", &stats.relay_us));
    println!(
        "signals sent {} received {} ({:.0} msg/s over {elapsed:.1} s)",
        stats.sent.load(Ordering::Relaxed),
        stats.received.load(Ordering::Relaxed),
        stats.received.load(Ordering::Relaxed) as f64 / elapsed
    );
    if let Some((rss, hwm)) = connected_rss {
        println!(
            "server after workload: VmRSS {:.2} MiB, VmHWM {:.2} MiB, {:.1} KiB per participant",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0,
            rss as f64 / args.participants as f64
        );
    }
    if let Some((rss, hwm)) = held_rss {
        println!(
            "server after {} s hold: VmRSS {:.2} MiB, VmHWM {:.2} MiB",
            args.hold,
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
    }
    println!("errors: {}", errors.len());
    for e in errors.iter().take(5) {
        println!("  {e}");
    }
    write_outputs(&args, &samples.lock().expect("not poisoned"));
}
