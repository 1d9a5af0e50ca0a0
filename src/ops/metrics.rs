//! Counters for `/metrics`, in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::budget::{self, Budget};

/// Process-wide counters. Gauges that the room map knows (rooms, seats) are read from it when
/// rendering instead of being kept twice.
#[derive(Debug, Default)]
pub struct Metrics {
    pub messages_relayed: AtomicU64,
    pub bytes_relayed: AtomicU64,
    pub frames_rejected: AtomicU64,
    pub slow_clients_dropped: AtomicU64,
    pub joins: AtomicU64,
    pub refused_room_full: AtomicU64,
    pub refused_bad_password: AtomicU64,
    pub refused_server_busy: AtomicU64,
    pub refused_too_many_rooms: AtomicU64,
    pub refused_locked: AtomicU64,
    pub refused_removed: AtomicU64,
    pub refused_upgrade_busy: AtomicU64,
    pub bad_requests: AtomicU64,
    pub tls_handshakes_failed: AtomicU64,
    pub refused_rate_limited: AtomicU64,
    pub connections_refused: AtomicU64,
    /// Requests answered 421: their Host is no name of this server (DNS rebinding, or a name
    /// the operator did not list with --allowed-hosts).
    pub refused_unknown_host: AtomicU64,
    pub upgrades_refused_per_ip: AtomicU64,
    pub messages_dropped_rate: AtomicU64,
    pub stun_bindings: AtomicU64,
    pub turn_allocations: AtomicU64,
    pub turn_allocations_refused: AtomicU64,
    pub turn_auth_failures: AtomicU64,
    pub turn_relayed_bytes: AtomicU64,
    pub turn_relayed_packets: AtomicU64,
    pub turn_packets_dropped: AtomicU64,
    pub turn_streams_refused: AtomicU64,
    pub stun_answers_limited: AtomicU64,
    pub connections_evicted: AtomicU64,
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Gauges read at render time.
pub struct Gauges {
    pub rooms: usize,
    pub participants: usize,
}

impl Metrics {
    pub fn render(&self, gauges: Gauges, budget: &Budget) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let mut line = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP videomeet_{name} {help}\n# TYPE videomeet_{name} {kind}\nvideomeet_{name} {value}"
            );
        };
        line(
            "rooms",
            "gauge",
            "Rooms held in memory.",
            gauges.rooms as u64,
        );
        line(
            "participants",
            "gauge",
            "Seats taken, including seats held for a lost socket.",
            gauges.participants as u64,
        );
        line(
            "open_sockets",
            "gauge",
            "Open WebSockets.",
            budget.sockets.used(),
        );
        line(
            "turn_streams",
            "gauge",
            "Open TURN connections over TCP and TLS.",
            budget.turn_streams.used(),
        );
        line(
            "joins_total",
            "counter",
            "Joins that got a seat.",
            get(&self.joins),
        );
        line(
            "messages_relayed_total",
            "counter",
            "Signals relayed to a peer.",
            get(&self.messages_relayed),
        );
        line(
            "bytes_relayed_total",
            "counter",
            "Bytes of relayed signals.",
            get(&self.bytes_relayed),
        );
        line(
            "frames_rejected_total",
            "counter",
            "Frames refused: too large, binary, or malformed.",
            get(&self.frames_rejected),
        );
        line(
            "bad_requests_total",
            "counter",
            "Messages answered with bad_request.",
            get(&self.bad_requests),
        );
        line(
            "connections_refused_total",
            "counter",
            "TCP connections closed at once: too many too fast from one address.",
            get(&self.connections_refused),
        );
        line(
            "requests_refused_unknown_host_total",
            "counter",
            "Requests answered 421: their Host is no name of this server (--allowed-hosts).",
            get(&self.refused_unknown_host),
        );
        line(
            "upgrades_refused_per_address_total",
            "counter",
            "WebSocket upgrades refused with 429: too many open from one address.",
            get(&self.upgrades_refused_per_ip),
        );
        line(
            "messages_dropped_rate_total",
            "counter",
            "Messages dropped because their socket sent past its rate.",
            get(&self.messages_dropped_rate),
        );
        line(
            "tls_handshakes_failed_total",
            "counter",
            "HTTPS connections that failed or stalled in the TLS handshake.",
            get(&self.tls_handshakes_failed),
        );
        line(
            "slow_clients_dropped_total",
            "counter",
            "Sockets dropped because their outbound queue was full.",
            get(&self.slow_clients_dropped),
        );
        line(
            "turn_allocations",
            "gauge",
            "TURN allocations held by the built-in relay.",
            budget.allocations.used(),
        );
        line(
            "stun_bindings_total",
            "counter",
            "STUN Binding requests answered.",
            get(&self.stun_bindings),
        );
        line(
            "turn_allocations_total",
            "counter",
            "TURN allocations made.",
            get(&self.turn_allocations),
        );
        line(
            "turn_allocations_refused_total",
            "counter",
            "TURN allocations refused: quota, arena or no free relay port.",
            get(&self.turn_allocations_refused),
        );
        line(
            "turn_auth_failures_total",
            "counter",
            "TURN requests with a wrong, expired or foreign credential, or a stale nonce.",
            get(&self.turn_auth_failures),
        );
        line(
            "turn_relayed_bytes_total",
            "counter",
            "Bytes relayed between clients and peers, both directions.",
            get(&self.turn_relayed_bytes),
        );
        line(
            "turn_relayed_packets_total",
            "counter",
            "Packets relayed between clients and peers, both directions.",
            get(&self.turn_relayed_packets),
        );
        line(
            "turn_packets_dropped_total",
            "counter",
            "Relay packets dropped: no permission, forbidden peer, or over the bandwidth cap.",
            get(&self.turn_packets_dropped),
        );
        line(
            "connections_evicted_total",
            "counter",
            "HTTP connections closed because their arena was full and they were the oldest.",
            get(&self.connections_evicted),
        );
        line(
            "stun_answers_limited_total",
            "counter",
            "STUN/TURN requests without a valid credential left unanswered: over the source's rate.",
            get(&self.stun_answers_limited),
        );
        line(
            "turn_streams_refused_total",
            "counter",
            "TURN connections over TCP/TLS refused: their arena or the address's cap is full.",
            get(&self.turn_streams_refused),
        );
        line(
            "heap_bytes",
            "gauge",
            "Heap bytes in use, counted by the allocator.",
            budget::heap_in_use() as u64,
        );
        line(
            "heap_peak_bytes",
            "gauge",
            "Most heap bytes ever in use.",
            budget::heap_peak() as u64,
        );
        line(
            "budget_bytes",
            "gauge",
            "The memory budget (memlimit.toml budget.total_mib).",
            budget.total_bytes,
        );
        line(
            "heap_ceiling_bytes",
            "gauge",
            "Heap past which nothing new is admitted.",
            budget.heap_ceiling,
        );
        let _ = writeln!(
            out,
            "# HELP videomeet_joins_refused_total Joins refused, by reason.\n# TYPE videomeet_joins_refused_total counter"
        );
        for (reason, counter) in [
            ("room_full", &self.refused_room_full),
            ("bad_password", &self.refused_bad_password),
            ("server_busy", &self.refused_server_busy),
            ("too_many_rooms", &self.refused_too_many_rooms),
            ("locked", &self.refused_locked),
            ("removed", &self.refused_removed),
            ("rate_limited", &self.refused_rate_limited),
            ("upgrade_busy", &self.refused_upgrade_busy),
        ] {
            let _ = writeln!(
                out,
                "videomeet_joins_refused_total{{reason=\"{reason}\"}} {}",
                get(counter)
            );
        }
        let _ = writeln!(
            out,
            "# HELP videomeet_arena_used Units held in each budget arena.\n# TYPE videomeet_arena_used gauge"
        );
        for arena in [
            &budget.sockets,
            &budget.in_flight,
            &budget.outbound,
            &budget.allocations,
            &budget.turn_streams,
            &budget.connections,
        ] {
            let _ = writeln!(
                out,
                "videomeet_arena_used{{arena=\"{}\"}} {}\nvideomeet_arena_capacity{{arena=\"{}\"}} {}",
                arena.name,
                arena.used(),
                arena.name,
                arena.capacity()
            );
        }
        out
    }
}
