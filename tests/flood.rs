//! The hostile flood on loopback: 2,000 sockets from 2,000 addresses each begin an almost-1 MiB
//! frame and trickle it, under a 64 MiB budget. The heap (counted by the same allocator the
//! binary uses) stays inside the budget, the in-flight arena inside its share, and an honest
//! pair still joins and signals in under a second.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use common::Server;
use videomeet::budget::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The soft open-file limit: each trickler costs two descriptors here (client and server end).
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1024)
}

/// A WebSocket from its own loopback address (127.1.x.y), so per-address caps see distinct hosts.
async fn trickler(server: SocketAddr, n: usize) -> Option<TcpStream> {
    let ip = Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8);
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(IpAddr::V4(ip), 0)).ok()?;
    let mut stream = socket.connect(server).await.ok()?;
    let request = common::upgrade_request(server, &format!("flood-{}", n % 300), "Upgrade", "");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.ok()?;
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return None;
    }
    // An almost-1 MiB text frame begins, and 16 KiB of it arrives.
    stream
        .write_all(&common::masked_text_header(1_000_000))
        .await
        .ok()?;
    stream.write_all(&vec![b'x'; 16 * 1024]).await.ok()?;
    Some(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_tricklers_stay_inside_a_64_mib_budget_and_honest_people_still_meet() {
    let wanted = 2000;
    let count = wanted.min(open_file_limit().saturating_sub(300) / 2);
    let server = Server::start(&[
        ("budget.total_mib", "64"),
        ("budget.reserve_mib", "8"),
        ("arenas.sockets_mib", "34"),
        ("arenas.rooms_mib", "4"),
        ("arenas.in_flight_mib", "8"),
        ("arenas.outbound_mib", "8"),
        ("turn.allocations_mib", "2"),
        ("timers.message_secs", "30"),
        ("timers.join_timeout_secs", "30"),
    ])
    .await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..count {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move { trickler(addr, n).await }));
    }
    let mut held = Vec::new();
    for task in tasks {
        if let Ok(Some(stream)) = task.await {
            held.push(stream);
        }
    }
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let in_flight = server
        .metric("videomeet_arena_used{arena=\"in_flight\"}")
        .await;
    let heap = server.metric("videomeet_heap_bytes").await;
    let peak = server.metric("videomeet_heap_peak_bytes").await;
    let sockets = server.metric("videomeet_open_sockets").await;

    // Honest people meet meanwhile, from their own address.
    let honest = Instant::now();
    let (mut ada, a) = server.join("honest", "ada").await;
    let (mut bo, _) = server.join("honest", "bo").await;
    ada.recv().await;
    bo.send(json!({"type":"signal","to":a["you"],"data":{"sdp":"v=0"}}))
        .await;
    assert_eq!(ada.recv().await["type"], "signal");
    let honest = honest.elapsed();

    println!(
        "flood: {} of {count} tricklers held open in {opened:.2?} ({sockets} sockets); \
         in-flight {:.1} MiB of 8; heap {:.1} MiB, peak {:.1} MiB of 64; honest join+signal {honest:.0?}",
        held.len(),
        in_flight / 1048576.0,
        heap / 1048576.0,
        peak / 1048576.0,
    );
    assert!(
        held.len() * 10 >= count * 9,
        "most tricklers got in: {}",
        held.len()
    );
    assert!(in_flight <= 8.0 * 1048576.0, "in-flight {in_flight}");
    assert!(
        in_flight >= 6.0 * 1048576.0,
        "the flood did fill the arena: {in_flight}"
    );
    assert!(peak <= 64.0 * 1048576.0, "peak heap {peak}");
    assert!(honest < Duration::from_secs(1), "{honest:?}");
    drop(held);
    server.shutdown().await;
}
