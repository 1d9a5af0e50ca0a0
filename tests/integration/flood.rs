//! The hostile flood on loopback: 2,000 sockets from 2,000 addresses each begin an almost-1 MiB
//! frame and trickle it, under a 64 MiB budget; 600 of them join first. The seatless ones are
//! closed at once (a message before join must fit in one 2 KiB chunk); the seated ones fill the
//! in-flight arena and no more. The heap (counted by the same allocator the binary uses) stays
//! inside the budget, and an honest pair still joins and signals in under a second.

use crate::common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::Server;

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

/// A WebSocket from its own loopback address (127.1.x.y), so per-address caps see distinct hosts,
/// that (after joining, if `join`) begins an almost-1 MiB text frame and sends 16 KiB of it.
async fn trickler(server: SocketAddr, n: usize, join: bool) -> Option<TcpStream> {
    let ip = Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8);
    // Six to a room, so that every joiner gets a seat.
    let mut stream = common::raw_ws_from(ip, server, &format!("flood-{}", n / 6)).await?;
    if join {
        let join = json!({"type":"join","name":"t","client":format!("trickler-{n:06}"),"audio":false,"video":false}).to_string();
        stream
            .write_all(&common::masked_text_header(join.len() as u64))
            .await
            .ok()?;
        stream.write_all(join.as_bytes()).await.ok()?;
        // Wait for `joined` (a text frame whose payload mentions it).
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("\"joined\"") {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    }
    // A seated trickler may already be cut for holding the contested arena while the rest are
    // still connecting (on a loaded machine opening all of them takes seconds): it counts as
    // seated all the same.
    let began = stream
        .write_all(&common::masked_text_header(1_000_000))
        .await;
    if began.is_ok() {
        let _ = stream.write_all(&vec![b'x'; 16 * 1024]).await;
    } else if !join {
        return None;
    }
    Some(stream)
}

/// Whether the server closed `stream` (EOF or reset) within `limit`, reading what it sent.
async fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_tricklers_stay_inside_a_64_mib_budget_and_honest_people_still_meet() {
    let _serial = common::heavy().await;
    let wanted = 2000;
    let count = wanted.min(open_file_limit().saturating_sub(300) / 2);
    // The first 600 join first (100 full rooms); the rest trickle without a seat.
    let joiners = 600.min(count / 3);
    let server = Server::start(&[
        ("budget.total_mib", "64"),
        ("budget.reserve_mib", "8"),
        ("arenas.sockets_mib", "34"),
        ("arenas.rooms_mib", "4"),
        ("arenas.in_flight_mib", "8"),
        ("arenas.outbound_mib", "5"),
        ("turn.allocations_mib", "2"),
        ("turn.streams_mib", "1"),
        ("arenas.connections_mib", "2"),
        ("timers.message_secs", "30"),
        ("timers.join_timeout_secs", "30"),
    ])
    .await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..count {
        let addr = server.addr;
        tasks.push(tokio::spawn(
            async move { trickler(addr, n, n < joiners).await },
        ));
    }
    let mut seated = Vec::new();
    let mut seatless = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        if let Ok(Some(stream)) = task.await {
            if n < joiners {
                seated.push(stream);
            } else {
                seatless.push(stream);
            }
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

    // A socket without a seat cannot start a message longer than a join: it is closed.
    let mut refused = 0;
    for stream in seatless.iter_mut().take(50) {
        if closed_by_server(stream, Duration::from_secs(2)).await {
            refused += 1;
        }
    }

    println!(
        "flood: {} seated and {} seatless tricklers in {opened:.2?} ({sockets} sockets open); \
         in-flight {:.1} MiB of 8; heap {:.1} MiB, peak {:.1} MiB of 64; \
         honest join+signal {honest:.0?}; {refused} of 50 seatless closed",
        seated.len(),
        seatless.len(),
        in_flight / 1048576.0,
        heap / 1048576.0,
        peak / 1048576.0,
    );
    assert!(
        seated.len() * 10 >= joiners * 9,
        "most seated tricklers got in: {}",
        seated.len()
    );
    assert!(in_flight <= 8.0 * 1048576.0, "in-flight {in_flight}");
    // The seated tricklers do not keep the arena: while they press on it (600 x 14 KiB wanted,
    // 8 MiB there), those open longer than inflight::CONTESTED_GRACE are cut.
    // Within a few seconds (the grace is 2 s; each holder checks at its next wake-up).
    let mut cut_count = 0;
    let watch = Instant::now();
    while cut_count == 0 && watch.elapsed() < Duration::from_secs(8) {
        for stream in seated.iter_mut().take(100) {
            cut_count += usize::from(closed_by_server(stream, Duration::from_millis(1)).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        cut_count > 0,
        "seated tricklers holding the contested arena are cut"
    );
    assert_eq!(refused, 50, "seatless tricklers are closed");
    assert!(
        sockets < (joiners + 200) as f64,
        "seatless tricklers do not stay: {sockets} open"
    );
    assert!(peak <= 64.0 * 1048576.0, "peak heap {peak}");
    assert!(honest < Duration::from_secs(1), "{honest:?}");
    drop(seated);
    drop(seatless);
    server.shutdown().await;
}
