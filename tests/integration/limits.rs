//! Per-address and per-socket limits against a real server: one host cannot take every socket,
//! connect or join without end, guess passwords quickly, or flood its room; everyone else carries
//! on. Each limit is set low here so the tests stay fast; the defaults are in memlimit.toml.

use crate::common;

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{client_id, Server, SOON};
use videomeet::Config;

/// Loopback is exempt from the per-address capacity limits by default; these tests count it.
fn counted() -> Config {
    Config {
        limit_loopback: true,
        ..Config::default()
    }
}

/// An upgrade the server answers and then closes (for refusals: 429 instead of 101).
fn upgrade_request(server: &Server, room: &str, extra: &str) -> String {
    common::upgrade_request(server.addr, room, "Upgrade, close", extra)
}

#[tokio::test]
async fn one_address_gets_a_few_sockets_and_a_429_past_them() {
    let server = Server::start_with(counted(), &[("rates.ip_sockets", "3")]).await;
    let mut open = Vec::new();
    for i in 0..3 {
        open.push(server.join("room", &format!("p{i}")).await.0);
    }
    let (status, headers, body) = server.http(&upgrade_request(&server, "room", "")).await;
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    assert_eq!(common::header(&headers, "retry-after"), Some("10"));
    assert_eq!(
        server
            .metric("videomeet_upgrades_refused_per_address_total")
            .await,
        1.0
    );
    // Closing one gives its place back.
    open.pop().unwrap().close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_again, joined) = server.join("room", "p9").await;
    assert_eq!(joined["type"], "joined");
    server.shutdown().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_counts_alone() {
    let config = Config {
        trusted_proxies: vec![videomeet::util::cidr::parse_cidr("127.0.0.1").unwrap()],
        ..Config::default()
    };
    let server = Server::start_with(config, &[("rates.ip_sockets", "1")]).await;
    // Two people behind the proxy, one socket each: both get in.
    let _a = server
        .raw_ws_with("room", "X-Forwarded-For: 203.0.113.1\r\n")
        .await;
    let _b = server
        .raw_ws_with("room", "X-Forwarded-For: 203.0.113.2\r\n")
        .await;
    // The first one again: over its own cap.
    let (status, _, _) = server
        .http(&upgrade_request(
            &server,
            "room",
            "X-Forwarded-For: 203.0.113.1\r\n",
        ))
        .await;
    assert_eq!(status, 429);
    server.shutdown().await;
}

#[tokio::test]
async fn a_connection_flood_is_cut_off_while_others_connect() {
    let server = Server::start_with(
        counted(),
        &[
            ("rates.ip_connections_burst", "5"),
            ("rates.ip_connections_per_min", "1"),
        ],
    )
    .await;
    for _ in 0..5 {
        let (status, _, _) = server.get("/healthz", "").await;
        assert_eq!(status, 200);
    }
    // The sixth is closed without a response.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let _ = tcp
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(SOON, tcp.read_to_end(&mut got)).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    server.shutdown().await;
}

#[tokio::test]
async fn joins_past_the_rate_are_refused_with_rate_limited() {
    let server = Server::start_with(
        counted(),
        &[
            ("rates.ip_joins_burst", "2"),
            ("rates.ip_joins_per_min", "1"),
        ],
    )
    .await;
    let (_a, _) = server.join("room", "a").await;
    let (_b, _) = server.join("room", "b").await;
    let mut c = server.client("room").await;
    c.send(json!({"type":"join","name":"c","client":client_id("c"),"audio":false,"video":false}))
        .await;
    let (code, seen) = c.until_closed().await;
    assert_eq!(seen[0]["code"], "rate_limited", "{seen:?}");
    assert_eq!(code, Some(4006));
    server.shutdown().await;
}

#[tokio::test]
async fn password_guessing_stops_after_five_before_any_hashing() {
    let server = Server::start(&[]).await;
    let (mut host, _) = server.join("vault", "host").await;
    host.send(json!({"type":"set-password","password":"correct horse"}))
        .await;
    assert_eq!(host.recv().await["type"], "room-updated");
    let guess = |password: &'static str| {
        let server = &server;
        async move {
            let mut c = server.client("vault").await;
            c.send(json!({"type":"join","name":"eve","client":client_id("eve"),"password":password,"audio":false,"video":false}))
                .await;
            c.recv().await
        }
    };
    for _ in 0..5 {
        assert_eq!(guess("wrong").await["code"], "bad_password");
    }
    let started = std::time::Instant::now();
    let refused = guess("correct horse").await;
    assert_eq!(
        refused["code"], "rate_limited",
        "even the right password waits once the guesses are spent"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused before any hashing"
    );
    assert_eq!(
        server
            .metric("videomeet_joins_refused_total{reason=\"rate_limited\"}")
            .await,
        1.0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_flooding_socket_is_throttled_and_its_room_keeps_talking() {
    let server = Server::start(&[
        ("rates.socket_messages_burst", "20"),
        ("rates.socket_messages_per_sec", "5"),
    ])
    .await;
    let (mut flooder, f) = server.join("room", "flooder").await;
    let (mut victim, v) = server.join("room", "victim").await;
    let (mut honest, h) = server.join("room", "honest").await;
    let _ = flooder.recv().await; // victim joined
    let _ = flooder.recv().await; // honest joined
    let _ = victim.recv().await; // honest joined
    for i in 0..200 {
        flooder
            .send(json!({"type":"signal","to":v["you"],"data":{"n":i}}))
            .await;
    }
    // The flooder hears why, once, and stays connected.
    let warned = flooder.recv().await;
    assert_eq!(warned["code"], "slow_down", "{warned}");
    // The victim got the burst, not the flood.
    let mut got = 0;
    while let Ok(Ok(msg)) = tokio::time::timeout(Duration::from_millis(300), victim.next()).await {
        if msg["from"] == f["you"] {
            got += 1;
        }
    }
    // The burst of 20 less the join itself, plus what refilled meanwhile.
    assert!((19..=25).contains(&got), "relayed {got} of 200");
    // Meanwhile an honest member's signal goes through at once.
    honest
        .send(json!({"type":"signal","to":v["you"],"data":"hello"}))
        .await;
    let msg = victim.recv().await;
    assert_eq!(
        (msg["from"].clone(), msg["data"].clone()),
        (h["you"].clone(), json!("hello"))
    );
    assert!(server.metric("videomeet_messages_dropped_rate_total").await >= 170.0);
    server.shutdown().await;
}

#[tokio::test]
async fn loopback_is_exempt_from_capacity_limits_by_default_but_not_from_password_limits() {
    let server = Server::start(&[
        ("rates.ip_sockets", "2"),
        ("rates.ip_joins_burst", "2"),
        ("rates.ip_joins_per_min", "1"),
        ("rates.ip_connections_burst", "2"),
        ("rates.ip_connections_per_min", "1"),
    ])
    .await;
    // A local reverse proxy nobody listed as trusted: all its users look like 127.0.0.1.
    let mut people = Vec::new();
    for i in 0..6 {
        people.push(server.join("local", &format!("p{i}")).await.0);
    }
    let (mut host, _) = server.join("locked-local", "host").await;
    host.send(json!({"type":"set-password","password":"pw"}))
        .await;
    host.recv().await;
    for _ in 0..5 {
        let mut c = server.client("locked-local").await;
        c.send(json!({"type":"join","name":"eve","client":client_id("eve"),"password":"no","audio":false,"video":false}))
            .await;
        assert_eq!(c.recv().await["code"], "bad_password");
    }
    let mut c = server.client("locked-local").await;
    c.send(json!({"type":"join","name":"eve","client":client_id("eve"),"password":"no","audio":false,"video":false}))
        .await;
    assert_eq!(c.recv().await["code"], "rate_limited");
    server.shutdown().await;
}
