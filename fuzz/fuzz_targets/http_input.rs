//! What an HTTP client controls before any WebSocket exists: the path (routing, room names,
//! embedded assets) and the headers the server reads (Origin, Host and its check against DNS
//! rebinding, X-Forwarded-For/-Host, If-None-Match, Accept-Encoding). Input: lines, the first the
//! path, then header values.
#![no_main]

use std::sync::{Arc, OnceLock};

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use videomeet::web::http::{accepts_gzip, etag_matches, origin_allowed, route, Client};
use videomeet::core::rooms::parse_room_name;
use videomeet::signaling::state::State;
use videomeet::Config;

fn state() -> &'static Arc<State> {
    static STATE: OnceLock<Arc<State>> = OnceLock::new();
    STATE.get_or_init(|| {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        Arc::new(State::new(Config::default(), rx))
    })
}

const HEADERS: [&str; 6] = [
    "origin",
    "host",
    "x-forwarded-for",
    "x-forwarded-host",
    "if-none-match",
    "accept-encoding",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let path = lines.next().unwrap_or("");
    let mut headers = HeaderMap::new();
    for (name, value) in HEADERS.iter().zip(lines) {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let response = route(path, &headers, state());
    assert!(response.status().as_u16() >= 200);
    if let Some(room) = path
        .strip_prefix("/r/")
        .or_else(|| path.strip_prefix("/ws/"))
    {
        if let Some(name) = parse_room_name(room) {
            assert!(!name.is_empty() && name.len() <= 64);
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        }
    }
    let trusted = [("10.0.0.0".parse().unwrap(), 8u8)];
    let client = Client::of("10.0.0.1:4000".parse().unwrap(), &headers, &trusted);
    let _ = origin_allowed(&headers, &client, &["https://meet.example.org".to_string()]);
    // The Host check against DNS rebinding: any Host is read without a panic, and an IP
    // literal or one of the machine's names is always let through.
    if let Some(host) = headers.get("host").and_then(|h| h.to_str().ok()) {
        let allowed = state().hosts.allows(Some(host));
        if let Some(name) = videomeet::ops::hosts::host_of(host) {
            if name.parse::<std::net::IpAddr>().is_ok() || name == "localhost" {
                assert!(allowed, "{host}");
            }
        }
    }
    let _ = etag_matches(&headers, "\"abc\"");
    let _ = accepts_gzip(&headers);
});
