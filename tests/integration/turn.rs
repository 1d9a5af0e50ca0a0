//! TURN credentials handed out in `joined`: checked by formula, and accepted by a real coturn
//! (Debian's `turnserver` and `turnutils_uclient`) on loopback. Without coturn the test fails,
//! naming the package; `.ci/run` installs it.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::Server;
use videomeet::core::credentials::TurnConfig;
use videomeet::Config;

const SECRET: &str = "test-secret-shared-with-coturn";

fn config(turn_port: u16) -> Config {
    Config {
        ice_servers: r#"[{"urls":"stun:127.0.0.1:3478"}]"#.into(),
        turn: TurnConfig {
            urls: vec![format!("turn:127.0.0.1:{turn_port}")],
            secret: SECRET.into(),
            ttl_secs: 3600,
        },
        ..Config::default()
    }
}

#[tokio::test]
async fn each_join_gets_its_own_time_limited_credential_and_never_the_secret() {
    let server = Server::start_with(config(3478), &[]).await;
    let (_a, a) = server.join("room", "ada").await;
    let (_b, b) = server.join("room", "bo").await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for joined in [&a, &b] {
        let list = joined["ice_servers"].as_array().unwrap();
        assert_eq!(
            list[0]["urls"], "stun:127.0.0.1:3478",
            "configured servers stay"
        );
        let turn = &list[1];
        assert_eq!(turn["urls"][0], "turn:127.0.0.1:3478");
        let username = turn["username"].as_str().unwrap();
        let (expiry, seat) = username.split_once(':').unwrap();
        assert_eq!(seat, joined["you"].as_str().unwrap());
        let expiry: u64 = expiry.parse().unwrap();
        assert!(
            (now + 3590..=now + 3610).contains(&expiry),
            "{expiry} vs {now}"
        );
        let mac = videomeet::core::password::hmac_sha1(SECRET.as_bytes(), username.as_bytes());
        assert_eq!(
            turn["credential"],
            videomeet::core::credentials::base64(&mac)
        );
        assert!(!joined.to_string().contains(SECRET));
    }
    assert_ne!(
        a["ice_servers"][1]["username"],
        b["ice_servers"][1]["username"]
    );
    server.shutdown().await;
}

/// Runs `turnutils_uclient` against coturn with a username and password; true if it relayed.
fn coturn_relays(port: u16, username: &str, password: &str) -> bool {
    let out = Command::new("turnutils_uclient")
        .args([
            "-e",
            "127.0.0.1",
            "-r",
            &port.to_string(),
            "-p",
            &port.to_string(),
        ])
        .args(["-u", username, "-w", password])
        .args(["-n", "3", "-m", "1", "-l", "100", "-y", "127.0.0.1"])
        .stdin(Stdio::null())
        .output()
        .expect("turnutils_uclient runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    !text.contains("Cannot complete Allocation") && text.contains("tot_recv_msgs=")
}

#[tokio::test]
async fn debian_coturn_accepts_the_credentials_and_refuses_tampered_or_expired_ones() {
    // A missing tool fails loudly, never a silent pass (tests/integration/main.rs).
    if Command::new("turnserver").arg("-h").output().is_err() {
        panic!("turnserver is missing: apt-get install coturn (.ci/run does)");
    }
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut coturn = Command::new("turnserver")
        .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
        .arg(format!("--listening-port={port}"))
        .args([
            "--use-auth-secret",
            &format!("--static-auth-secret={SECRET}"),
        ])
        .args(["--realm=videomeet", "--no-tls", "--no-dtls", "--no-cli"])
        .args([
            "--allow-loopback-peers",
            "--min-port=49160",
            "--max-port=49400",
        ])
        .args(["--log-file=stdout", "--simple-log"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver starts");
    // Ready when it answers a Binding request (a fixed wait was too short on a loaded machine).
    let probe = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let binding = videomeet::turn::codec::Builder::new(
        videomeet::turn::codec::BINDING,
        videomeet::turn::codec::Class::Request,
        [3; 12],
    )
    .finish(None, true);
    let mut answered = false;
    for _ in 0..50 {
        probe.send_to(&binding, ("127.0.0.1", port)).await.unwrap();
        let mut buf = [0u8; 512];
        if tokio::time::timeout(Duration::from_millis(200), probe.recv(&mut buf))
            .await
            .is_ok()
        {
            answered = true;
            break;
        }
    }
    assert!(answered, "coturn did not start within 10 s");

    let server = Server::start_with(config(port), &[]).await;
    let (_c, joined) = server.join("room", "ada").await;
    let turn = &joined["ice_servers"][1];
    let username = turn["username"].as_str().unwrap().to_string();
    let password = turn["credential"].as_str().unwrap().to_string();
    let ok = tokio::task::spawn_blocking(move || {
        // Up to three tries: coturn's relayed port can collide with one another test holds.
        let good = (0..3).any(|_| coturn_relays(port, &username, &password));
        let tampered = coturn_relays(port, &username.replace(':', "0:"), &password);
        // Signed properly but already expired.
        let past = "1000000000:7";
        let mac = videomeet::core::password::hmac_sha1(SECRET.as_bytes(), past.as_bytes());
        let expired = coturn_relays(port, past, &videomeet::core::credentials::base64(&mac));
        (good, tampered, expired)
    })
    .await
    .unwrap();
    let _ = coturn.kill();
    let _ = coturn.wait();
    server.shutdown().await;
    assert_eq!(
        ok,
        (true, false, false),
        "(issued, tampered, expired) relayed?"
    );
}
