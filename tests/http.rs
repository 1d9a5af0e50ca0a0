//! The HTTP side: pages, embedded assets, caching, headers, health and metrics.

mod common;

use common::{header, Server};

#[tokio::test]
async fn pages_are_served_with_security_headers() {
    let server = Server::start(&[]).await;
    for path in ["/", "/r/team-standup", "/r/Team-Standup"] {
        let (status, headers, body) = server.get(path, "").await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/html; charset=utf-8")
        );
        let csp = header(&headers, "content-security-policy").unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert!(header(&headers, "referrer-policy").is_some());
        let perms = header(&headers, "permissions-policy").unwrap();
        for feature in [
            "camera=(self)",
            "microphone=(self)",
            "display-capture=(self)",
        ] {
            assert!(perms.contains(feature), "{perms}");
        }
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains("<html"), "{path}");
        assert!(
            !html.contains("https://"),
            "{path} must load nothing from third parties"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn bad_room_names_get_a_clear_404_page() {
    let server = Server::start(&[]).await;
    let long = format!("/r/{}", "a".repeat(65));
    for path in [
        "/r/",
        "/r/a_b",
        "/r/%2e%2e",
        &long,
        "/r/a/b",
        "/ws/bad_name",
        "/nothing",
    ] {
        let (status, headers, body) = server.get(path, "").await;
        assert_eq!(status, 404, "{path}");
        assert!(header(&headers, "content-type")
            .unwrap()
            .starts_with("text/html"));
        assert!(String::from_utf8(body).unwrap().contains("Not found"));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn assets_are_gzipped_cached_and_revalidated() {
    let server = Server::start(&[]).await;
    let (status, headers, plain) = server.get("/js/app.js", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(header(&headers, "content-encoding").is_none());
    let etag = header(&headers, "etag").unwrap().to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong ETag"
    );
    assert!(header(&headers, "cache-control").is_some());

    let (status, headers, gz) = server
        .get("/js/app.js", "Accept-Encoding: gzip, br\r\n")
        .await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    assert_eq!(header(&headers, "vary"), Some("Accept-Encoding"));
    assert!(gz.len() < plain.len());
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");

    let (status, headers, body) = server
        .get("/js/app.js", &format!("If-None-Match: {etag}\r\n"))
        .await;
    assert_eq!(status, 304);
    assert_eq!(header(&headers, "etag"), Some(etag.as_str()));
    assert!(body.is_empty());

    let (status, _, _) = server.get("/css/app.css", "").await;
    assert_eq!(status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let server = Server::start(&[]).await;
    let (status, _, body) = server.get("/healthz", "").await;
    assert_eq!((status, body.as_slice()), (200, b"ok\n".as_slice()));
    let (_ada, _) = server.join("m", "ada").await;
    let (status, headers, body) = server.get("/metrics", "").await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(body).unwrap();
    for name in [
        "videomeet_rooms 1",
        "videomeet_participants 1",
        "videomeet_open_sockets 1",
        "videomeet_messages_relayed_total",
        "videomeet_bytes_relayed_total",
        "videomeet_frames_rejected_total",
        "videomeet_joins_refused_total{reason=\"room_full\"}",
        "videomeet_heap_bytes",
        "videomeet_budget_bytes 471859200",
    ] {
        assert!(text.contains(name), "{name} missing in\n{text}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn other_methods_and_plain_gets_on_the_socket_path_are_refused() {
    let server = Server::start(&[]).await;
    let (status, headers, _) = server
        .http(&format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            server.addr
        ))
        .await;
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
    let (status, _, _) = server.get("/ws/room", "").await;
    assert_eq!(status, 400, "a plain GET is not an upgrade");
    let (status, _, _) = server
        .get(
            "/ws/room",
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://evil.example\r\n",
        )
        .await;
    assert_eq!(status, 403, "a foreign page may not open sockets here");
    server.shutdown().await;
}

#[tokio::test]
async fn half_sent_headers_are_cut_off() {
    let server = Server::start(&[("timers.header_timeout_secs", "1")]).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // The request never finishes its headers; the server must hang up on its own.
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(4),
        stream.read_to_end(&mut rest),
    )
    .await;
    assert!(read.is_ok(), "the server hung up by itself");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    server.shutdown().await;
}

#[tokio::test]
async fn new_sends_the_browser_to_a_fresh_random_room() {
    let server = Server::start(&[]).await;
    let (status, headers, _) = server.get("/new", "").await;
    assert_eq!(status, 303);
    let location = header(&headers, "location").unwrap();
    let name = location.strip_prefix("/r/").unwrap();
    let groups: Vec<&str> = name.split('-').collect();
    assert_eq!(groups.len(), 3);
    assert!(groups
        .iter()
        .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_hexdigit())));
    let (_, again, _) = server.get("/new", "").await;
    assert_ne!(header(&again, "location").unwrap(), location);
    server.shutdown().await;
}

#[tokio::test]
async fn a_room_that_exists_answers_exactly_like_one_that_does_not() {
    let server = Server::start(&[]).await;
    let (mut host, _) = server.join("secret-meeting", "ada").await;
    host.send(serde_json::json!({"type":"set-password","password":"pw"}))
        .await;
    host.recv().await;
    let strip = |headers: Vec<(String, String)>| -> Vec<(String, String)> {
        headers.into_iter().filter(|(k, _)| k != "date").collect()
    };
    for extra in ["", "Accept-Encoding: gzip\r\n"] {
        let (s1, h1, b1) = server.get("/r/secret-meeting", extra).await;
        let (s2, h2, b2) = server.get("/r/no-such-meeting", extra).await;
        assert_eq!((s1, strip(h1), b1), (s2, strip(h2), b2), "{extra:?}");
    }
    // The socket handshake too: the room is only looked at after `join`.
    let (status_a, headers_a, _) = server
        .http(&format!(
            "GET /ws/secret-meeting HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.addr
        ))
        .await;
    let (status_b, headers_b, _) = server
        .http(&format!(
            "GET /ws/no-such-meeting HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.addr
        ))
        .await;
    assert_eq!((status_a, strip(headers_a)), (status_b, strip(headers_b)));
    server.shutdown().await;
}
