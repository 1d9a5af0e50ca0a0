//! The HTTP side: pages, embedded assets, caching, headers, health and metrics.

use crate::common::{client_id, header, upgrade_request, Server};
use videomeet::util::cidr::parse_cidr;
use videomeet::Config;

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
        // WebSockets only to this page's own host ('self' covers its ws:/wss:), to no other.
        assert!(csp.contains("connect-src 'self';"), "{csp}");
        assert!(!csp.contains("ws:") && !csp.contains("wss:"), "{csp}");
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
        "videomeet_relay_seconds_count",
        "videomeet_budget_bytes 471859200",
    ] {
        assert!(text.contains(name), "{name} missing in\n{text}");
    }
    server.shutdown().await;
}

/// Every relayed signal is timed once its peer's write is done, into a Prometheus histogram
/// whose buckets are cumulative and end at its count; notices (peer-joined) are not signals.
#[tokio::test]
async fn relayed_signals_are_timed_in_a_histogram() {
    const SIGNALS: usize = 40;
    let server = Server::start(&[]).await;
    let (mut ada, joined) = server.join("timed", "ada").await;
    let ada_id = joined["you"].as_str().unwrap().to_string();
    let (mut bo, _) = server.join("timed", "bo").await;
    assert_eq!(ada.recv().await["type"], "peer-joined");
    let count = "videomeet_relay_seconds_count";
    let before = server.metric(count).await;
    let relayed_before = server.metric("videomeet_messages_relayed_total").await;
    for i in 0..SIGNALS {
        bo.send(serde_json::json!({"type":"signal","to":ada_id,"data":{"n":i}}))
            .await;
    }
    for i in 0..SIGNALS {
        assert_eq!(ada.recv().await["data"]["n"], i);
    }
    // Counted just after the write that carried them returned: ada may read them first.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.metric(count).await < before + SIGNALS as f64 {
        assert!(tokio::time::Instant::now() < deadline, "not all counted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let relayed = server.metric("videomeet_messages_relayed_total").await - relayed_before;
    assert_eq!(relayed, SIGNALS as f64);
    assert_eq!(server.metric(count).await - before, relayed);

    let (_, _, body) = server.get("/metrics", "").await;
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("# TYPE videomeet_relay_seconds histogram\n"));
    let buckets: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("videomeet_relay_seconds_bucket{le=\""))
        .map(|l| {
            let (le, value) = l.split_once("\"} ").unwrap();
            (le.to_string(), value.parse().unwrap())
        })
        .collect();
    assert_eq!(buckets.len(), 11, "{text}");
    assert_eq!(buckets[0].0, "0.00005");
    assert_eq!(buckets[10].0, "+Inf");
    let bounds: Vec<f64> = buckets[..10].iter().map(|b| b.0.parse().unwrap()).collect();
    assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets[10].1, server.metric(count).await);
    let sum = server.metric("videomeet_relay_seconds_sum").await;
    assert!(sum >= 0.0 && sum <= buckets[10].1 * 5.0, "{sum}");
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

/// DNS rebinding: a page on `evil.example` whose name now resolves to this server sends its
/// requests with `Host: evil.example`. Pages and socket upgrades get 421, while this server's own
/// names, IP literals and the names the operator added still serve, and an honest client meets.
#[tokio::test]
async fn a_rebinding_page_gets_421_and_the_servers_own_names_still_serve() {
    let config = Config {
        allowed_hosts: vec!["meet.example.org".into(), "*.home.example".into()],
        ..Config::default()
    };
    let server = Server::start_with(config, &[]).await;
    let port = server.addr.port();
    let ask = |host: String, path: &'static str| {
        let server = &server;
        async move {
            server
                .http(&format!(
                    "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                ))
                .await
        }
    };
    for evil in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        format!("meet.example.org.evil.example:{port}"),
        format!("a.b.home.example:{port}"),
    ] {
        for path in ["/", "/r/family", "/metrics", "/healthz", "/js/app.js"] {
            let (status, _, body) = ask(evil.clone(), path).await;
            assert_eq!(status, 421, "{evil} {path}");
            let text = String::from_utf8(body).unwrap();
            assert!(text.contains("--allowed-hosts"), "{text}");
        }
        // The socket upgrade too, with the rebinding page's own (matching) Origin.
        let request = upgrade_request(server.addr, "family", "Upgrade, close", "")
            .replace(&format!("Host: {}", server.addr), &format!("Host: {evil}"))
            .replace("\r\n\r\n", &format!("\r\nOrigin: http://{evil}\r\n\r\n"));
        let (status, _, _) = server.http(&request).await;
        assert_eq!(status, 421, "upgrade for {evil}");
    }
    for good in [
        format!("localhost:{port}"),
        format!("LocalHost.:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("192.168.77.5:{port}"),
        "meet.example.org".to_string(),
        format!("Meet.Example.org.:{port}"),
        format!("pi.home.example:{port}"),
    ] {
        let (status, _, _) = ask(good.clone(), "/r/family").await;
        assert_eq!(status, 200, "{good}");
    }
    assert!(
        server
            .metric("videomeet_requests_refused_unknown_host_total")
            .await
            >= 24.0
    );
    // An honest participant still joins (the harness asks by 127.0.0.1).
    let (_ada, joined) = server.join("family", "ada").await;
    assert_eq!(joined["type"], "joined");
    server.shutdown().await;
}

/// `/metrics` tells when meetings happen and how near the heap is to its ceiling: by default
/// only loopback and the trusted proxies' networks read it. A visitor through a trusted proxy
/// gets the same 404 as an address with nothing; `--metrics-from` opens it to a network.
#[tokio::test]
async fn metrics_are_for_loopback_and_trusted_networks_and_404_for_visitors() {
    let config = Config {
        trusted_proxies: vec![parse_cidr("127.0.0.1").unwrap()],
        ..Config::default()
    };
    let server = Server::start_with(config, &[]).await;
    let (status, _, body) = server.get("/metrics", "").await;
    assert_eq!(status, 200, "the proxy's own host (loopback) reads it");
    assert!(String::from_utf8(body).unwrap().contains("videomeet_rooms"));
    let (nothing_status, _, nothing) = server.get("/nothing-here", "").await;
    for visitor in ["203.0.113.7", "10.0.0.9", "6.6.6.6, 127.0.0.1"] {
        let (status, _, body) = server
            .get("/metrics", &format!("X-Forwarded-For: {visitor}\r\n"))
            .await;
        assert_eq!(
            (status, &body),
            (nothing_status, &nothing),
            "a visitor ({visitor}) is told nothing is there"
        );
    }
    let (status, _, _) = server
        .get("/metrics", "X-Forwarded-For: 127.0.0.1\r\n")
        .await;
    assert_eq!(status, 200, "forwarded for the proxy's own machine");
    server.shutdown().await;

    let config = Config {
        trusted_proxies: vec![parse_cidr("127.0.0.1").unwrap()],
        metrics_from: vec![parse_cidr("203.0.113.0/24").unwrap()],
        ..Config::default()
    };
    let server = Server::start_with(config, &[]).await;
    let forwarded = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    assert_eq!(
        server.get("/metrics", &forwarded("203.0.113.7")).await.0,
        200
    );
    assert_eq!(
        server.get("/metrics", &forwarded("198.51.100.1")).await.0,
        404
    );
    // Pages and sockets are for everyone, as before.
    assert_eq!(server.get("/", &forwarded("198.51.100.1")).await.0, 200);
    let mut honest = server.client("m").await;
    assert_eq!(
        honest.join("ada", &client_id("ada"), None).await["type"],
        "joined"
    );
    server.shutdown().await;
}
