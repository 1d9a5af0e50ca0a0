//! HTTPS through the real binary: the self-signed certificate is made once and reused across
//! restarts, the operator's files are reloaded on SIGHUP without dropping connections, and a
//! stalled handshake is cut off.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::binary::Running;
use crate::common::https::{connect, get};

fn temp_dir(name: &str) -> PathBuf {
    common::binary::temp_dir(name)
}

#[tokio::test]
async fn self_signed_certificate_is_served_and_kept_across_restarts() {
    let state = temp_dir("tls-restart");
    let first = Running::start(&state, &[]);
    let (mut tls, shown, alpn) = connect(first.https).await;
    assert_eq!(
        shown, first.fingerprint,
        "the log names the certificate served"
    );
    assert_eq!(
        alpn.as_deref(),
        Some(&b"http/1.1"[..]),
        "never h2, which we do not speak"
    );
    let (status, body) = get(&mut tls, "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = get(&mut tls, "/r/family").await;
    assert_eq!(status, 200);
    assert!(
        body.to_ascii_lowercase().contains("<!doctype html"),
        "the room page"
    );
    assert_ne!(first.http.port(), first.https.port());
    first.stop();

    let second = Running::start(&state, &[]);
    assert_eq!(
        second.fingerprint, shown,
        "a restart reuses the certificate the browser accepted"
    );
    let (_tls, again, _) = connect(second.https).await;
    assert_eq!(again, shown);
    second.stop();
    let _ = std::fs::remove_dir_all(&state);
}

/// Writes a fresh self-signed pair for `name` into `dir`, as certbot would renew one.
fn write_pair(dir: &Path, name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("fullchain.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("privkey.pem"), key.serialize_pem()).unwrap();
    videomeet::ops::tls::fingerprint(cert.der())
}

#[tokio::test]
async fn operator_certificate_reloads_on_sighup_without_dropping_connections() {
    let state = temp_dir("tls-files");
    std::fs::create_dir_all(&state).unwrap();
    let old = write_pair(&state, "meet.example.org");
    let cert = state.join("fullchain.pem");
    let key = state.join("privkey.pem");
    let server = Running::start(
        &state,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(server.fingerprint, old);
    let (mut before, shown, _) = connect(server.https).await;
    assert_eq!(shown, old);

    let new = write_pair(&state, "meet.example.org");
    server.signal("-HUP");
    let mut now = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = connect(server.https).await.1;
        if now == new {
            break;
        }
    }
    assert_eq!(now, new, "new connections get the renewed certificate");
    let (status, _) = get(&mut before, "/healthz").await;
    assert_eq!(
        status, 200,
        "a connection made before the reload still works"
    );

    // A broken file keeps the working certificate and says why.
    std::fs::write(&cert, "not a certificate").unwrap();
    server.signal("-HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(connect(server.https).await.1, new);
    let said = server.log.lock().unwrap().join("\n");
    assert!(said.contains("kept the old certificate"), "{said}");
    server.stop();
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test]
async fn a_stalled_handshake_is_cut_off() {
    let state = temp_dir("tls-stall");
    let server = Running::start(&state, &["--set", "timers.header_timeout_secs=1"]);
    let mut tcp = TcpStream::connect(server.https).await.unwrap();
    // Half a ClientHello record header, then nothing.
    tcp.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "closed after the timeout"
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&state);
}

/// The plain-HTTP trap (issue 16): with HTTPS on, a page asked for over plain HTTP by a LAN
/// address is sent to the HTTPS port of the same host; a loopback name, the WebSocket and
/// `/healthz` are not; a trusted proxy's requests are not either (the page links instead).
#[tokio::test]
async fn plain_http_pages_are_sent_to_https_except_for_loopback_names_and_proxies() {
    let state = temp_dir("tls-redirect");
    let server = Running::start(&state, &[]);
    let get = |host: String, path: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let addr = server.http;
        async move { common::http_at(addr, &request, Duration::from_secs(5)).await }
    };
    let lan = format!("192.0.2.2:{}", server.http.port());
    let (status, headers, _) = get(lan.clone(), "/r/family?x=1").await;
    assert_eq!(status, 308);
    assert_eq!(
        common::header(&headers, "location"),
        Some(format!("https://192.0.2.2:{}/r/family?x=1", server.https.port()).as_str())
    );
    let (status, headers, _) = get(lan.clone(), "/").await;
    assert_eq!(
        (status, common::header(&headers, "location").is_some()),
        (308, true)
    );
    for path in ["/healthz", "/ws/family"] {
        let (status, _, _) = get(lan.clone(), path).await;
        assert_ne!(status, 308, "{path}");
    }
    for host in ["127.0.0.1", "localhost"] {
        let (status, _, _) = get(format!("{host}:{}", server.http.port()), "/r/family").await;
        assert_eq!(status, 200, "{host}");
    }
    server.stop();

    let proxied = Running::start(&state, &["--trusted-proxies", "127.0.0.1/32"]);
    let request = "GET /r/family HTTP/1.1\r\nHost: 192.0.2.2\r\nX-Forwarded-For: 192.0.2.7\r\nConnection: close\r\n\r\n";
    let (status, _, _) = common::http_at(proxied.http, request, Duration::from_secs(5)).await;
    assert_eq!(status, 200, "behind a proxy the page links to HTTPS itself");
    proxied.stop();
    let _ = std::fs::remove_dir_all(&state);
}
