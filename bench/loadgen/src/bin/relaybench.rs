//! Relay benchmark for the built-in TURN server: pairs of UDP TURN clients on loopback, each
//! pair's two allocations bound to each other by channel, sending 1,200-byte ChannelData both
//! ways (the size of a WebRTC video packet). Prints delivered packets/s and Mbit/s, loss, the
//! server's CPU and its memory per allocation (from /proc/PID).
//!
//! cargo run --release -p loadgen --bin relaybench -- --addr 127.0.0.1:8080 --stun 3478 \
//!     --pid $(pidof videomeet) --pairs 15 --rate 200 --secs 10
//! (`--rate 0`: as fast as the server takes them.) The server needs
//! `--set turn.allocations_per_seat=1000 --set turn.allocation_kbit_per_sec=1000000
//! --set turn.seat_kbit_per_sec=10000000 --set turn.total_mbit_per_sec=100000`: the bench makes
//! every allocation with one seat's credential, and measures the relay, not the caps (with the
//! shipped seat cap of 30 Mbit/s, 15 pairs at 250 packets/s lose about 85 %).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message as Ws;
use videomeet::turn::codec::{self as stun, attr, Builder, Class, Message};

const PAYLOAD: usize = 1200;

struct Args {
    addr: String,
    stun: u16,
    pid: u32,
    pairs: usize,
    rate: u64,
    secs: u64,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:8080".into(),
        stun: 3478,
        pid: 0,
        pairs: 15,
        rate: 200,
        secs: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--addr" => a.addr = v,
            "--stun" => a.stun = v.parse().expect("--stun PORT"),
            "--pid" => a.pid = v.parse().expect("--pid PID"),
            "--pairs" => a.pairs = v.parse().expect("--pairs N"),
            "--rate" => a.rate = v.parse().expect("--rate PPS"),
            "--secs" => a.secs = v.parse().expect("--secs N"),
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of the process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

struct Client {
    sock: Arc<UdpSocket>,
    server: SocketAddr,
    user: String,
    key: [u8; 16],
    nonce: String,
}

impl Client {
    async fn ask(&mut self, method: u16, build: impl Fn(Builder) -> Builder) -> (u16, Vec<u8>) {
        for _ in 0..3 {
            let mut txid = [0u8; 12];
            getrandom::fill(&mut txid).unwrap();
            let b = Builder::new(method, Class::Request, txid)
                .attr(attr::USERNAME, self.user.as_bytes())
                .attr(attr::REALM, b"videomeet")
                .attr(attr::NONCE, self.nonce.as_bytes());
            self.sock
                .send_to(&build(b).finish(Some(&self.key), false), self.server)
                .await
                .unwrap();
            let mut buf = vec![0u8; 2048];
            let n = tokio::time::timeout(Duration::from_secs(3), self.sock.recv(&mut buf))
                .await
                .expect("TURN answers")
                .unwrap();
            buf.truncate(n);
            let msg = Message::parse(&buf).expect("a STUN answer");
            let code = msg
                .get(attr::ERROR_CODE)
                .map_or(0, |v| u16::from(v[2]) * 100 + u16::from(v[3]));
            if code == 401 || code == 438 {
                self.nonce = msg.text(attr::NONCE).unwrap_or_default().to_string();
                continue;
            }
            return (code, buf);
        }
        panic!("authentication kept failing")
    }

    async fn allocate(&mut self) -> SocketAddr {
        let (code, raw) = self
            .ask(stun::ALLOCATE, |b| {
                b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
            })
            .await;
        assert_eq!(code, 0, "Allocate refused with {code}");
        Message::parse(&raw)
            .unwrap()
            .xor_address(attr::XOR_RELAYED_ADDRESS)
            .unwrap()
    }

    async fn bind(&mut self, channel: u16, peer: SocketAddr) {
        let (code, _) = self
            .ask(stun::CHANNEL_BIND, |b| {
                b.attr(
                    attr::CHANNEL_NUMBER,
                    &[(channel >> 8) as u8, channel as u8, 0, 0],
                )
                .xor_address(attr::XOR_PEER_ADDRESS, peer)
            })
            .await;
        assert_eq!(code, 0, "ChannelBind refused with {code}");
    }
}

/// One seat's TURN credential, from a real `joined`; the socket is kept open by the caller.
async fn credential(
    addr: &str,
) -> (
    String,
    String,
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/relaybench"))
        .await
        .expect("the server takes WebSockets");
    let join = r#"{"type":"join","name":"relaybench","client":"relaybench01","audio":false,"video":false}"#;
    ws.send(Ws::text(join)).await.unwrap();
    while let Some(Ok(msg)) = ws.next().await {
        let Ws::Text(text) = msg else { continue };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if v["type"] == "joined" {
            let turn = v["ice_servers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["username"].is_string())
                .expect("the server hands out TURN (is --stun-listen on?)")
                .clone();
            return (
                turn["username"].as_str().unwrap().into(),
                turn["credential"].as_str().unwrap().into(),
                ws,
            );
        }
    }
    panic!("no joined")
}

#[tokio::main]
async fn main() {
    let a = args();
    let (user, password, _ws) = credential(&a.addr).await;
    let key = stun::long_term_key(&user, "videomeet", &password);
    let server = SocketAddr::from(([127, 0, 0, 1], a.stun));
    let rss_before = status_kib(a.pid, "VmRSS:");

    let mut pairs = Vec::new();
    for _ in 0..a.pairs {
        let mut side = Vec::new();
        for _ in 0..2 {
            let mut c = Client {
                sock: Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap()),
                server,
                user: user.clone(),
                key,
                nonce: String::new(),
            };
            let relayed = c.allocate().await;
            side.push((c, relayed));
        }
        let (mut x, rx) = side.remove(0);
        let (mut y, ry) = side.remove(0);
        x.bind(0x4000, ry).await;
        y.bind(0x4000, rx).await;
        pairs.push((x, y));
    }
    let allocations = a.pairs * 2;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_after = status_kib(a.pid, "VmRSS:");
    println!(
        "{allocations} allocations: server VmRSS {rss_before} -> {rss_after} KiB ({:.1} KiB per allocation)",
        (rss_after.saturating_sub(rss_before)) as f64 / allocations as f64
    );

    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(a.secs);
    let packet = stun::channel_data(0x4000, &[0x5a; PAYLOAD], false);
    let ticks0 = cpu_ticks(a.pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (x, y) in &pairs {
        for sock in [x.sock.clone(), y.sock.clone()] {
            let (sent, packet, tx) = (sent.clone(), packet.clone(), sock.clone());
            let rate = a.rate;
            tasks.push(tokio::spawn(async move {
                let gap = (rate > 0).then(|| Duration::from_secs_f64(1.0 / rate as f64));
                let mut next = Instant::now();
                while Instant::now() < deadline {
                    if tx.send_to(&packet, server).await.is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    match gap {
                        Some(gap) => {
                            next += gap;
                            tokio::time::sleep_until(next.into()).await;
                        }
                        None => tokio::task::yield_now().await,
                    }
                }
            }));
            let (sock, received) = (sock.clone(), received.clone());
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let until = deadline + Duration::from_millis(500);
                while let Ok(Ok(n)) =
                    tokio::time::timeout_at(until.into(), sock.recv(&mut buf)).await
                {
                    if n >= 4 + PAYLOAD {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64().min(a.secs as f64 + 0.5);
    let ticks = cpu_ticks(a.pid) - ticks0;
    let (s, r) = (
        sent.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed),
    );
    let pps = r as f64 / a.secs as f64;
    println!(
        "{} pairs, {} ms: sent {s}, delivered {r} ({:.2} % lost); {:.0} packets/s, {:.1} Mbit/s of payload delivered; server CPU {:.0} % of one core",
        a.pairs,
        (secs * 1000.0) as u64,
        if s > 0 { 100.0 * (s.saturating_sub(r)) as f64 / s as f64 } else { 0.0 },
        pps,
        pps * (PAYLOAD * 8) as f64 / 1e6,
        100.0 * ticks as f64 / 100.0 / a.secs as f64,
    );
    println!(
        "server VmRSS {} KiB, VmHWM {} KiB",
        status_kib(a.pid, "VmRSS:"),
        status_kib(a.pid, "VmHWM:")
    );
}
