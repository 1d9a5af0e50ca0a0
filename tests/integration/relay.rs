//! The built-in STUN/TURN server, driven over real UDP and TCP sockets: by a small client made
//! of our own codec (to see each answer exactly), and by Debian coturn's `turnutils_stunclient`
//! and `turnutils_uclient`, peers nobody here wrote (`.ci/run` installs coturn).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::turn::{code_of, turn_entry, Peer};
use crate::common::Server;
use videomeet::turn::codec::{self as stun, attr, Builder, Class, Message};
use videomeet::Config;

async fn relay_server(sets: &[(&str, &str)]) -> (Server, u16) {
    let server = Server::start_with_relay(Config::default(), sets).await;
    let port = server.stun.unwrap();
    (server, port)
}

#[tokio::test]
async fn binding_allocation_permissions_and_data_follow_rfc_8656() {
    let (server, port) = relay_server(&[]).await;
    let (_a, ja) = server.join("r", "ada").await;
    let (mut bo_socket, jb) = server.join("r", "bo").await;
    let (urls, ua, pa) = turn_entry(&ja);
    assert_eq!(
        urls,
        [
            format!("turn:127.0.0.1:{port}?transport=udp"),
            format!("turn:127.0.0.1:{port}?transport=tcp")
        ]
    );
    assert!(ja["ice_servers"]
        .to_string()
        .contains(&format!("\"stun:127.0.0.1:{port}\"")));
    let (_, ub, pb) = turn_entry(&jb);
    assert!(ua.ends_with(&format!(":{}", ja["you"].as_str().unwrap())));

    let mut a = Peer::new(port, &ua, &pa).await;
    let mut b = Peer::new(port, &ub, &pb).await;

    // Binding: anyone, no credential; the answer names the address we came from.
    let raw = a
        .roundtrip(Builder::new(stun::BINDING, Class::Request, Peer::txid()).finish(None, true))
        .await;
    let msg = Message::parse(&raw).unwrap();
    assert_eq!(msg.class, Class::Success);
    assert_eq!(
        msg.xor_address(attr::XOR_MAPPED_ADDRESS),
        Some(a.sock.local_addr().unwrap())
    );

    // Allocate without a credential: 401 with our realm and a nonce.
    let raw = a
        .roundtrip(
            Builder::new(stun::ALLOCATE, Class::Request, Peer::txid())
                .attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
                .finish(None, false),
        )
        .await;
    let msg = Message::parse(&raw).unwrap();
    assert_eq!(code_of(&msg), 401);
    assert_eq!(msg.text(attr::REALM), Some("videomeet"));

    // A wrong password is refused, and so is ada's username with bo's password.
    let mut wrong = Peer::new(port, &ua, "not-the-password").await;
    assert_eq!(wrong.allocate().await.0, 401);
    let mut swapped = Peer::new(port, &ua, &pb).await;
    assert_eq!(swapped.allocate().await.0, 401);

    let (code, ra) = a.allocate().await;
    assert_eq!(code, 0);
    let ra = ra.unwrap();
    assert_eq!(ra.ip().to_string(), "127.0.0.1");
    assert!(ra.port() >= 49152);
    let (code, rb) = b.allocate().await;
    assert_eq!(code, 0);
    let rb = rb.unwrap();
    assert_eq!(server.metric("videomeet_turn_allocations").await, 2.0);

    // Private and loopback peers are refused, unless they are our own relayed addresses.
    assert_eq!(a.permit("10.0.0.1:9".parse().unwrap()).await, 403);
    assert_eq!(a.permit("192.168.1.1:9".parse().unwrap()).await, 403);
    assert_eq!(a.permit(rb).await, 0);
    assert_eq!(b.permit(ra).await, 0);

    // Send indication from a, Data indication at b.
    let send = Builder::new(stun::SEND, Class::Indication, Peer::txid())
        .xor_address(attr::XOR_PEER_ADDRESS, rb)
        .attr(attr::DATA, b"hello over the relay")
        .finish(None, false);
    a.sock.send_to(&send, a.server).await.unwrap();
    let got = b.recv().await;
    let msg = Message::parse(&got).expect("a Data indication");
    assert_eq!((msg.method, msg.class), (stun::DATA, Class::Indication));
    assert_eq!(msg.xor_address(attr::XOR_PEER_ADDRESS), Some(ra));
    assert_eq!(msg.get(attr::DATA), Some(&b"hello over the relay"[..]));

    // Channels: b binds 0x4001 to a, so a's data reaches b as ChannelData.
    let (code, _) = b
        .ask(stun::CHANNEL_BIND, |x| {
            x.attr(attr::CHANNEL_NUMBER, &[0x40, 0x01, 0, 0])
                .xor_address(attr::XOR_PEER_ADDRESS, ra)
        })
        .await;
    assert_eq!(code, 0);
    let (code, _) = a
        .ask(stun::CHANNEL_BIND, |x| {
            x.attr(attr::CHANNEL_NUMBER, &[0x40, 0x00, 0, 0])
                .xor_address(attr::XOR_PEER_ADDRESS, rb)
        })
        .await;
    assert_eq!(code, 0);
    // The same channel for another peer is refused.
    let (code, _) = a
        .ask(stun::CHANNEL_BIND, |x| {
            x.attr(attr::CHANNEL_NUMBER, &[0x40, 0x00, 0, 0])
                .xor_address(attr::XOR_PEER_ADDRESS, ra)
        })
        .await;
    assert_eq!(code, 400);
    a.sock
        .send_to(&stun::channel_data(0x4000, b"media", false), a.server)
        .await
        .unwrap();
    let got = b.recv().await;
    assert_eq!(
        stun::parse_channel_data(&got),
        Some((0x4001, &b"media"[..]))
    );
    assert!(server.metric("videomeet_turn_relayed_bytes_total").await >= 25.0);

    // A second Allocate on the same 5-tuple with a new transaction: 437.
    assert_eq!(a.allocate().await.0, 437);

    // When bo's seat goes, bo's allocation goes within a second or two.
    bo_socket.send(serde_json::json!({"type": "leave"})).await;
    let mut left = false;
    for _ in 0..30 {
        if server.metric("videomeet_turn_allocations").await == 1.0 {
            left = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left, "the seat's allocation was released");
    // And bo's credential no longer opens anything.
    assert_eq!(b.allocate().await.0, 401);

    // Refresh with lifetime 0 ends a's.
    let (code, _) = a.ask(stun::REFRESH, |x| x.u32(attr::LIFETIME, 0)).await;
    assert_eq!(code, 0);
    assert_eq!(server.metric("videomeet_turn_allocations").await, 0.0);
    server.shutdown().await;
}

#[tokio::test]
async fn quotas_nonces_and_credentials_expire() {
    let (server, port) =
        relay_server(&[("turn.allocations_per_seat", "1"), ("turn.nonce_secs", "1")]).await;
    let (_a, ja) = server.join("r", "ada").await;
    let (_, user, password) = turn_entry(&ja);
    let mut first = Peer::new(port, &user, &password).await;
    assert_eq!(first.allocate().await.0, 0);
    let mut second = Peer::new(port, &user, &password).await;
    assert_eq!(
        second.allocate().await.0,
        486,
        "one allocation per seat here"
    );
    assert!(
        server
            .metric("videomeet_turn_allocations_refused_total")
            .await
            >= 1.0
    );

    // The nonce first learnt goes stale: 438 with a fresh one, and the retry works.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let stale = first.nonce.clone();
    let (code, _) = first
        .ask(stun::REFRESH, |x| x.u32(attr::LIFETIME, 600))
        .await;
    assert_eq!(code, 0);
    assert_ne!(first.nonce, stale, "a 438 handed out a new nonce");
    server.shutdown().await;

    // A credential past its expiry is refused even for a live seat.
    let config = Config {
        turn: videomeet::core::credentials::TurnConfig {
            ttl_secs: 1,
            ..Default::default()
        },
        ..Config::default()
    };
    let server = Server::start_with_relay(config, &[]).await;
    let port = server.stun.unwrap();
    let (_a, ja) = server.join("r", "ada").await;
    let (_, user, password) = turn_entry(&ja);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut late = Peer::new(port, &user, &password).await;
    assert_eq!(late.allocate().await.0, 401);
    server.shutdown().await;
}

/// Nonces are MACs of their expiry and the client address, checked in constant time: a nonce
/// learnt from another address, one with a digit changed, or the short form of before issue 13
/// is stale (438), while the honest client's own nonce works.
#[tokio::test]
async fn forged_or_borrowed_nonces_are_stale_and_the_honest_client_allocates() {
    let (server, port) = relay_server(&[]).await;
    let (_a, ja) = server.join("r", "ada").await;
    let (_, user, password) = turn_entry(&ja);
    let mut honest = Peer::new(port, &user, &password).await;
    assert_eq!(honest.allocate().await.0, 0, "the honest client allocates");
    let nonce = honest.nonce.clone();
    let (expiry, mac) = nonce.split_once('.').unwrap();
    assert_eq!(mac.len(), 40, "the whole HMAC-SHA1, not a prefix");

    let thief = Peer::new_from([127, 0, 0, 2], port, &user, &password).await;
    assert_eq!(
        thief.ask_with_nonce(stun::ALLOCATE, &nonce).await,
        438,
        "a nonce is bound to the address it was given to"
    );
    let last = mac.chars().last().unwrap();
    let flipped = format!(
        "{expiry}.{}{}",
        &mac[..39],
        if last == '0' { '1' } else { '0' }
    );
    let forged_expiry = format!("{:x}.{mac}", u64::from_str_radix(expiry, 16).unwrap() + 1);
    for forged in [
        flipped,
        forged_expiry,
        format!("{expiry}.{}", &mac[..16]),
        format!("{expiry}.{}", "z".repeat(40)),
        format!("{expiry}."),
        "junk".to_string(),
    ] {
        let fresh = Peer::new(port, &user, &password).await;
        assert_eq!(
            fresh.ask_with_nonce(stun::ALLOCATE, &forged).await,
            438,
            "{forged}"
        );
    }
    // The thief with a nonce of its own is an honest client of a live seat again.
    let mut thief = thief;
    assert_eq!(thief.allocate().await.0, 0);
    server.shutdown().await;
}

/// `turnutils_uclient` in client-to-client mode (`-y`): two allocations relay to each other.
/// `extra`: `-t` for TCP, `-t -S` for TLS. Returns (messages received back, its output).
fn uclient_run(port: u16, user: &str, password: &str, extra: &[&str]) -> (u64, String) {
    // `timeout`: a client that never gets its allocation retries forever.
    let out = Command::new("timeout")
        .args(["20", "turnutils_uclient", "-p", &port.to_string()])
        .args(["-u", user, "-w", password])
        // -c: no RTCP allocation (it needs a port reservation; WebRTC never asks for one).
        .args(["-n", "20", "-m", "1", "-l", "120", "-y", "-c", "-z", "5"])
        .args(extra)
        .arg("127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .expect("turnutils_uclient runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // The last progress line has the totals.
    let received = text
        .rsplit("tot_recv_msgs=")
        .next()
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    (received, text)
}

fn uclient(port: u16, user: &str, password: &str, tcp: bool) -> (bool, String) {
    let extra: &[&str] = if tcp { &["-t"] } else { &[] };
    let (received, text) = uclient_run(port, user, password, extra);
    (
        received > 0 && !text.contains("Cannot complete Allocation"),
        text,
    )
}

#[tokio::test]
async fn coturn_clients_bind_allocate_and_relay_through_it() {
    if Command::new("turnutils_uclient")
        .arg("-h")
        .output()
        .is_err()
    {
        panic!("turnutils_uclient is missing: apt-get install coturn (.ci/run does)");
    }
    let (server, port) = relay_server(&[]).await;
    let (_a, ja) = server.join("r", "ada").await;
    let (_, user, password) = turn_entry(&ja);

    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args([
                "10",
                "turnutils_stunclient",
                "-p",
                &port.to_string(),
                "127.0.0.1",
            ])
            .output()
            .expect("turnutils_stunclient runs")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("UDP reflexive addr: 127.0.0.1:"),
        "stunclient: {text}"
    );

    let (good_udp, good_tcp, wrong, expired) = tokio::task::spawn_blocking(move || {
        (
            uclient(port, &user, &password, false),
            uclient(port, &user, &password, true),
            uclient(port, &user, "wrong-password", false).0,
            uclient(port, "1000000000:1", &password, false).0,
        )
    })
    .await
    .unwrap();
    assert!(good_udp.0, "UDP relay: {}", good_udp.1);
    assert!(good_tcp.0, "TCP relay: {}", good_tcp.1);
    assert!(!wrong, "a wrong password relays nothing");
    assert!(!expired, "an expired username relays nothing");
    assert!(server.metric("videomeet_turn_relayed_packets_total").await > 0.0);
    assert!(server.metric("videomeet_turn_auth_failures_total").await > 0.0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_over_tls_relays_for_coturns_client() {
    let mut sockets = videomeet::turn::server::Sockets::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let tls = videomeet::ops::tls::Tls::load(videomeet::ops::tls::Source::SelfSigned { dir: None })
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_port = listener.local_addr().unwrap().port();
    sockets.tls = Some((listener, std::sync::Arc::new(tls)));
    let server = Server::start_on(Config::default(), &[], Some(sockets)).await;
    let (_a, ja) = server.join("r", "ada").await;
    let (urls, user, password) = turn_entry(&ja);
    assert!(urls.contains(&format!("turns:127.0.0.1:{tls_port}?transport=tcp")));
    let (relayed, text) =
        tokio::task::spawn_blocking(move || uclient_run(tls_port, &user, &password, &["-t", "-S"]))
            .await
            .unwrap();
    assert!(relayed > 0, "TURN over TLS relayed nothing: {text}");
    server.shutdown().await;
}

/// RFC 8656 §3.1: over TCP the allocation is the connection's, and the connection goes with it.
/// When the housekeeping ends an allocation (here its seat left), the connection is closed
/// within a second or two, not left holding a TURN-stream place until its next read.
#[tokio::test]
async fn a_tcp_turn_connection_closes_when_its_allocation_ends() {
    let (server, port) = relay_server(&[]).await;
    let (mut ada, joined) = server.join("r", "ada").await;
    let (_, user, password) = turn_entry(&joined);
    let mut tcp = Peer::new_tcp(port, &user, &password).await;
    assert_eq!(tcp.allocate().await.0, 0);
    assert_eq!(server.metric("videomeet_turn_streams").await, 1.0);
    ada.send(serde_json::json!({"type": "leave"})).await;
    assert!(
        tcp.tcp_closed_within(Duration::from_secs(5)).await,
        "the connection outlived its allocation"
    );
    assert_eq!(server.metric("videomeet_turn_allocations").await, 0.0);
    assert_eq!(server.metric("videomeet_turn_streams").await, 0.0);
    server.shutdown().await;
}
