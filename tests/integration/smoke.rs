//! Smoke test of a whole binary as it ships: it starts, serves the page over HTTP and HTTPS,
//! two WebSocket clients join a room and relay a signal through it, its STUN server answers a
//! Binding request, and SIGTERM stops it cleanly.
//!
//! By default it runs this build's own `videomeet`. `.ci/cross` runs it once per cross-built
//! static binary instead:
//!
//! ```sh
//! VIDEOMEET_SMOKE_BIN=target/aarch64-unknown-linux-musl/release/videomeet \
//! VIDEOMEET_SMOKE_RUNNER=qemu-aarch64-static cargo test --test integration smoke::
//! ```
//!
//! `VIDEOMEET_SMOKE_RUNNER` is a command prefix split on spaces (empty: run the binary
//! directly). With `VIDEOMEET_SMOKE_BIN` set, every wait is 60 s instead of a few seconds: an
//! ARM binary under qemu-user translates its code as it first runs it.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

use crate::common::binary::{temp_dir, Running};
use crate::common::{client_id, header, http_at, Client};

/// The binary under test, its runner prefix, and how long to wait for anything it does.
fn under_test() -> (PathBuf, Vec<String>, Duration) {
    let runner: Vec<String> = std::env::var("VIDEOMEET_SMOKE_RUNNER")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    match std::env::var_os("VIDEOMEET_SMOKE_BIN") {
        Some(bin) => (PathBuf::from(bin), runner, Duration::from_secs(60)),
        None => (
            PathBuf::from(env!("CARGO_BIN_EXE_videomeet")),
            runner,
            Duration::from_secs(10),
        ),
    }
}

/// Kills the server if the test fails half-way, so no emulated process outlives it.
struct Guard(Option<Running>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(server) = self.0.take() {
            server.kill();
        }
    }
}

/// The next JSON text message within `limit`.
async fn recv(client: &mut Client, limit: Duration) -> Value {
    loop {
        let frame = tokio::time::timeout(limit, client.ws.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a good frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn join(url: &str, name: &str, limit: Duration) -> (Client, Value) {
    let (ws, _) = tokio::time::timeout(limit, tokio_tungstenite::connect_async(url))
        .await
        .expect("the WebSocket handshake in time")
        .expect("the WebSocket connects");
    let mut client = Client { ws };
    let join =
        json!({"type":"join","name":name,"client":client_id(name),"audio":true,"video":false});
    client
        .ws
        .send(Message::text(join.to_string()))
        .await
        .unwrap();
    let joined = recv(&mut client, limit).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    (client, joined)
}

/// A STUN Binding request (RFC 8489) to `port` on loopback; the answer's XOR-MAPPED-ADDRESS must
/// be the port we sent from.
async fn stun_binding(port: u16, limit: Duration) {
    const COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let transaction = *b"smoke-test-1";
    let mut request = vec![0x00, 0x01, 0x00, 0x00];
    request.extend_from_slice(&COOKIE);
    request.extend_from_slice(&transaction);
    socket.send_to(&request, ("127.0.0.1", port)).await.unwrap();
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(limit, socket.recv(&mut buf))
        .await
        .expect("a STUN answer in time")
        .unwrap();
    let answer = &buf[..n];
    assert_eq!(
        &answer[..2],
        &[0x01, 0x01],
        "Binding success: {answer:02x?}"
    );
    assert_eq!(&answer[4..8], &COOKIE);
    assert_eq!(&answer[8..20], &transaction);
    let mut attrs = &answer[20..];
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let len = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        if kind == 0x0020 {
            let mapped = u16::from_be_bytes([attrs[6], attrs[7]]) ^ 0x2112;
            assert_eq!(mapped, socket.local_addr().unwrap().port());
            return;
        }
        attrs = &attrs[(4 + len.next_multiple_of(4)).min(attrs.len())..];
    }
    panic!("no XOR-MAPPED-ADDRESS in {answer:02x?}");
}

#[tokio::test]
async fn the_binary_serves_a_meeting() {
    let (program, runner, limit) = under_test();
    assert!(
        Path::new(&program).is_file(),
        "no binary at {}",
        program.display()
    );
    let state = temp_dir("smoke");
    let started = std::time::Instant::now();
    let server = Running::start_program(
        &program,
        &runner,
        &state,
        &["--stun-listen", "127.0.0.1:0"],
        limit,
    );
    eprintln!(
        "smoke: {runner:?} {} listening after {:.2?}",
        program.display(),
        started.elapsed()
    );
    let mut server = Guard(Some(server));
    let run = server.0.as_ref().unwrap();

    // The page, over HTTP and HTTPS.
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        run.http
    );
    let (status, headers, body) = http_at(run.http, &request, limit).await;
    assert_eq!(status, 200);
    let kind = header(&headers, "content-type").unwrap_or_default();
    assert!(kind.starts_with("text/html"), "{kind}");
    let page = String::from_utf8(body).unwrap();
    assert!(page.to_lowercase().contains("<html"), "{page}");
    let (mut tls, shown, _) = tokio::time::timeout(limit, common::https::connect(run.https))
        .await
        .expect("a TLS handshake in time");
    assert_eq!(shown, run.fingerprint, "the certificate the log names");
    let (status, page) = common::https::get(&mut tls, "/").await;
    assert_eq!(status, 200);
    assert!(page.to_lowercase().contains("<html"), "{page}");

    // Two clients meet and relay a signal each way.
    let url = run.ws_url("smoke");
    let (mut ada, joined) = join(&url, "ada", limit).await;
    assert_eq!(joined["peers"], json!([]));
    let ada_id = joined["you"].as_str().unwrap().to_string();
    let (mut bo, joined) = join(&url, "bo", limit).await;
    assert_eq!(joined["peers"][0]["id"], ada_id.as_str(), "{joined}");
    let bo_id = joined["you"].as_str().unwrap().to_string();
    let seen = recv(&mut ada, limit).await;
    assert_eq!(seen["type"], "peer-joined", "{seen}");
    assert_eq!(seen["peer"]["id"], bo_id.as_str());

    let offer = json!({"description":{"type":"offer","sdp":"v=0 smoke"}});
    let signal = json!({"type":"signal","to":ada_id,"data":offer});
    bo.ws.send(Message::text(signal.to_string())).await.unwrap();
    let got = recv(&mut ada, limit).await;
    assert_eq!(got, json!({"type":"signal","from":bo_id,"data":offer}));
    let answer = json!({"description":{"type":"answer","sdp":"v=0 smoke"}});
    let signal = json!({"type":"signal","to":bo_id,"data":answer});
    ada.ws
        .send(Message::text(signal.to_string()))
        .await
        .unwrap();
    let got = recv(&mut bo, limit).await;
    assert_eq!(got, json!({"type":"signal","from":ada_id,"data":answer}));

    // The built-in STUN server answers with the address it saw.
    let log = run.wait_log_within("STUN and TURN on udp and tcp ", limit);
    let stun: std::net::SocketAddr = log
        .split("STUN and TURN on udp and tcp ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .and_then(|a| a.trim().parse().ok())
        .expect("the STUN address in the log");
    stun_binding(stun.port(), limit).await;

    let status = server.0.take().unwrap().terminate(limit);
    eprintln!("smoke: passed in {:.2?}, exit {status}", started.elapsed());
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&state);
}
