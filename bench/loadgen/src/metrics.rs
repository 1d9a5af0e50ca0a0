//! The server's own `/metrics` (Prometheus text), read over plain HTTP/1.1 on the same address
//! as the WebSockets: the heap its counting allocator saw, the budget, arena use, and the room
//! and seat gauges, which /proc cannot tell.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Gauges worth printing after a run (names from the server's src/ops/metrics.rs).
pub const SHOWN: &[&str] = &[
    "videomeet_rooms",
    "videomeet_participants",
    "videomeet_open_sockets",
    "videomeet_heap_bytes",
    "videomeet_heap_peak_bytes",
    "videomeet_budget_bytes",
    "videomeet_heap_ceiling_bytes",
    "videomeet_slow_clients_dropped_total",
    "videomeet_messages_dropped_rate_total",
    "videomeet_frames_rejected_total",
    "videomeet_arena_used{arena=\"sockets\"}",
    "videomeet_arena_used{arena=\"in_flight\"}",
    "videomeet_arena_used{arena=\"outbound\"}",
];

/// A `/metrics` reading: `name{labels}` to value.
pub type Values = BTreeMap<String, f64>;

/// `name{labels} value` lines, by name with labels; None if the server has no /metrics (the
/// Socket.io reference) or does not answer in 5 s.
pub async fn fetch(addr: SocketAddr) -> Option<Values> {
    let text = tokio::time::timeout(Duration::from_secs(5), get(addr))
        .await
        .ok()??;
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(parse(body))
}

async fn get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    String::from_utf8(buf).ok()
}

pub fn parse(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// A Prometheus histogram's cumulative buckets over the span of two readings, as (upper bound
/// in seconds, count) in ascending order, `+Inf` last (as infinity); empty if it is missing.
pub fn histogram_diff(before: &Values, after: &Values, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .filter_map(|(key, value)| {
            let le = key.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, value - before.get(key).copied().unwrap_or(0.0)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// Prints the shown gauges as `metrics.NAME: value` summary-style lines.
pub fn print(m: &BTreeMap<String, f64>) {
    for name in SHOWN {
        if let Some(v) = m.get(*name) {
            println!("metrics.{name}: {v}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_prometheus_text() {
        let m = super::parse(
            "# HELP videomeet_rooms Rooms.\n# TYPE videomeet_rooms gauge\nvideomeet_rooms 3\n\
             videomeet_arena_used{arena=\"in_flight\"} 1024\n",
        );
        assert_eq!(m["videomeet_rooms"], 3.0);
        assert_eq!(m["videomeet_arena_used{arena=\"in_flight\"}"], 1024.0);
    }

    #[test]
    fn histogram_differences_in_bound_order() {
        let before = super::parse(
            "h_bucket{le=\"0.001\"} 1\nh_bucket{le=\"0.0005\"} 1\nh_bucket{le=\"+Inf\"} 2\n",
        );
        let after = super::parse(
            "h_bucket{le=\"0.001\"} 8\nh_bucket{le=\"0.0005\"} 4\nh_bucket{le=\"+Inf\"} 10\nh_count 10\n",
        );
        assert_eq!(
            super::histogram_diff(&before, &after, "h"),
            vec![(0.0005, 3.0), (0.001, 7.0), (f64::INFINITY, 8.0)]
        );
        assert!(super::histogram_diff(&before, &after, "other").is_empty());
    }
}
