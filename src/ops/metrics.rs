//! Counters for `/metrics`, in the Prometheus text format.
//!
//! Every line of `/metrics` is one entry of the `metrics_table!` list below, in the order it is
//! rendered: a counter is written there once (its field, its name, its help) and becomes a field
//! of [`Metrics`] and its lines; a gauge says where its value is read. A new metric is one entry.
//! A histogram ([`Histogram`]) is fixed buckets of atomics, so observing is two additions.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::admission::budget::{self, Budget};

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Upper bounds of a [`Histogram`]'s buckets, in microseconds; a last bucket takes the rest
/// (`+Inf`). Fixed, so observing needs no lock and no allocation: from the 50 µs a relay takes on
/// an idle server to the 100 ms of a badly stalled one.
pub const BOUNDS_US: [u32; 10] = [
    50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000,
];

/// Durations counted into [`BOUNDS_US`]: each bucket alone (cumulated when rendered, as
/// Prometheus wants), and their sum.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe_us(&self, us: u32) {
        let bucket = BOUNDS_US.partition_point(|&bound| bound < us);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(u64::from(us), Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// `NAME_bucket{le="..."}` (cumulative, in seconds), `NAME_sum` and `NAME_count`. The count
    /// is the `+Inf` bucket of the same reading, so the lines agree with one another even while
    /// observations land.
    fn render(&self, name: &str, out: &mut String) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match BOUNDS_US.get(i) {
                Some(us) => format!("{}", f64::from(*us) / 1e6),
                None => "+Inf".into(),
            };
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// Gauges read at render time.
pub struct Gauges {
    pub rooms: usize,
    pub participants: usize,
}

/// One metric (or one family of labelled series) of `/metrics`.
struct Metric {
    /// Without the `videomeet_` prefix.
    name: &'static str,
    help: &'static str,
    read: Read,
}

/// A counter's field of [`Metrics`].
type Field = fn(&Metrics) -> &AtomicU64;

/// A histogram's field of [`Metrics`].
type HistogramField = fn(&Metrics) -> &Histogram;

/// Where a metric's value comes from.
enum Read {
    Counter(Field),
    /// Read at render time from what the room map and the budget know, so it is not kept twice.
    Gauge(fn(&Gauges, &Budget) -> u64),
    /// Counters of one family, labelled `reason`, each a field of [`Metrics`].
    ByReason(&'static [(&'static str, Field)]),
    /// Each budget arena's units in use, labelled `arena`, and (under the name given, with no
    /// HELP of its own) its capacity.
    Arenas(&'static str),
    Histogram(HistogramField),
}

/// Declares [`Metrics`] (one field per counter) and `TABLE` (every metric, in render order)
/// from one list, so a counter's field, name and help are written once. Entries:
/// - `counter FIELD "name" "help";`
/// - `gauge "name" "help" = |gauges, budget| value;`
/// - `by_reason "name" "help" { "reason" FIELD, ... }`
/// - `arenas "name" "help" capacity "name";`
/// - `histogram FIELD "name" "help";`
macro_rules! metrics_table {
    (@munch [$($fields:tt)*] [$($rows:tt)*]) => {
        /// Process-wide counters. Gauges that the room map knows (rooms, seats) are read from it
        /// when rendering instead of being kept twice.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $($fields)*
        }

        /// Every metric of `/metrics`, in the order it is rendered.
        static TABLE: &[Metric] = &[$($rows)*];
    };
    (@munch [$($fields:tt)*] [$($rows:tt)*]
        $(#[$doc:meta])* counter $field:ident $name:literal $help:literal; $($rest:tt)*) => {
        metrics_table!(@munch
            [$($fields)* $(#[$doc])* pub $field: AtomicU64,]
            [$($rows)* Metric { name: $name, help: $help, read: Read::Counter(|m| &m.$field) },]
            $($rest)*);
    };
    (@munch [$($fields:tt)*] [$($rows:tt)*]
        gauge $name:literal $help:literal = $read:expr; $($rest:tt)*) => {
        metrics_table!(@munch
            [$($fields)*]
            [$($rows)* Metric { name: $name, help: $help, read: Read::Gauge($read) },]
            $($rest)*);
    };
    (@munch [$($fields:tt)*] [$($rows:tt)*]
        by_reason $name:literal $help:literal { $($reason:literal $field:ident,)* }
        $($rest:tt)*) => {
        metrics_table!(@munch
            [$($fields)* $(pub $field: AtomicU64,)*]
            [$($rows)* Metric {
                name: $name,
                help: $help,
                read: Read::ByReason(&[$(($reason, |m| &m.$field),)*]),
            },]
            $($rest)*);
    };
    (@munch [$($fields:tt)*] [$($rows:tt)*]
        $(#[$doc:meta])* histogram $field:ident $name:literal $help:literal; $($rest:tt)*) => {
        metrics_table!(@munch
            [$($fields)* $(#[$doc])* pub $field: Histogram,]
            [$($rows)* Metric { name: $name, help: $help, read: Read::Histogram(|m| &m.$field) },]
            $($rest)*);
    };
    (@munch [$($fields:tt)*] [$($rows:tt)*]
        arenas $name:literal $help:literal capacity $capacity:literal; $($rest:tt)*) => {
        metrics_table!(@munch
            [$($fields)*]
            [$($rows)* Metric { name: $name, help: $help, read: Read::Arenas($capacity) },]
            $($rest)*);
    };
    ($($entries:tt)*) => {
        metrics_table!(@munch [] [] $($entries)*);
    };
}

metrics_table! {
    gauge "rooms" "Rooms held in memory." = |g, _| g.rooms as u64;
    gauge "participants" "Seats taken, including seats held for a lost socket." =
        |g, _| g.participants as u64;
    gauge "open_sockets" "Open WebSockets." = |_, b| b.sockets.used();
    gauge "turn_streams" "Open TURN connections over TCP and TLS." = |_, b| b.turn_streams.used();
    counter joins "joins_total" "Joins that got a seat.";
    counter messages_relayed "messages_relayed_total" "Signals relayed to a peer.";
    counter bytes_relayed "bytes_relayed_total" "Bytes of relayed signals.";
    /// From a signal's frame being read to the write of the batch carrying it to its peer
    /// completing (`signaling::outbox::Drain`): the server's own share of relay latency.
    histogram relay "relay_seconds"
        "Time a relayed signal spent in the server: from its frame read to its peer's write done.";
    counter room_messages "room_messages_total" "Room messages (reactions) relayed to a room.";
    counter room_messages_dropped "room_messages_dropped_total"
        "Room messages dropped: over the socket's room-message rate or size cap.";
    counter knocks "knocks_total" "Knocks on rooms that ask to join (reconnects not counted).";
    counter knocks_admitted "knocks_admitted_total" "Knocks a host admitted.";
    counter knocks_denied "knocks_denied_total" "Knocks a host denied.";
    counter frames_rejected "frames_rejected_total"
        "Frames refused: too large, binary, or malformed.";
    counter bad_requests "bad_requests_total" "Messages answered with bad_request.";
    counter connections_refused "connections_refused_total"
        "TCP connections closed at once: too many too fast from one address.";
    /// Requests answered 421: their Host is no name of this server (DNS rebinding, or a name
    /// the operator did not list with --allowed-hosts).
    counter refused_unknown_host "requests_refused_unknown_host_total"
        "Requests answered 421: their Host is no name of this server (--allowed-hosts).";
    counter upgrades_refused_per_ip "upgrades_refused_per_address_total"
        "WebSocket upgrades refused with 429: too many open from one address.";
    counter messages_dropped_rate "messages_dropped_rate_total"
        "Messages dropped because their socket sent past its rate.";
    counter tls_handshakes_failed "tls_handshakes_failed_total"
        "HTTPS connections that failed or stalled in the TLS handshake.";
    counter slow_clients_dropped "slow_clients_dropped_total"
        "Sockets dropped because their outbound queue was full.";
    gauge "turn_allocations" "TURN allocations held by the built-in relay." =
        |_, b| b.allocations.used();
    counter stun_bindings "stun_bindings_total" "STUN Binding requests answered.";
    counter turn_allocations "turn_allocations_total" "TURN allocations made.";
    counter turn_allocations_refused "turn_allocations_refused_total"
        "TURN allocations refused: quota, arena or no free relay port.";
    counter turn_auth_failures "turn_auth_failures_total"
        "TURN requests with a wrong, expired or foreign credential, or a stale nonce.";
    counter turn_relayed_bytes "turn_relayed_bytes_total"
        "Bytes relayed between clients and peers, both directions.";
    counter turn_relayed_packets "turn_relayed_packets_total"
        "Packets relayed between clients and peers, both directions.";
    counter turn_packets_dropped "turn_packets_dropped_total"
        "Relay packets dropped: no permission, forbidden peer, over the bandwidth cap, or a full socket buffer.";
    counter connections_evicted "connections_evicted_total"
        "HTTP connections closed because their arena was full and they were the oldest.";
    counter stun_answers_limited "stun_answers_limited_total"
        "STUN/TURN requests without a valid credential left unanswered: over the source's rate.";
    counter turn_streams_refused "turn_streams_refused_total"
        "TURN connections over TCP/TLS refused: their arena or the address's cap is full.";
    gauge "heap_bytes" "Heap bytes in use, counted by the allocator." =
        |_, _| budget::heap_in_use() as u64;
    gauge "heap_peak_bytes" "Most heap bytes ever in use." = |_, _| budget::heap_peak() as u64;
    gauge "budget_bytes" "The memory budget (memlimit.toml budget.total_mib)." =
        |_, b| b.total_bytes;
    gauge "heap_ceiling_bytes" "Heap past which nothing new is admitted." = |_, b| b.heap_ceiling;
    by_reason "joins_refused_total" "Joins refused, by reason." {
        "room_full" refused_room_full,
        "bad_password" refused_bad_password,
        "server_busy" refused_server_busy,
        "too_many_rooms" refused_too_many_rooms,
        "locked" refused_locked,
        "removed" refused_removed,
        "denied" refused_denied,
        "rate_limited" refused_rate_limited,
        "upgrade_busy" refused_upgrade_busy,
    }
    arenas "arena_used" "Units held in each budget arena." capacity "arena_capacity";
}

impl Metrics {
    pub fn render(&self, gauges: Gauges, budget: &Budget) -> String {
        let mut out = String::with_capacity(2048);
        for metric in TABLE {
            metric.render(self, &gauges, budget, &mut out);
        }
        out
    }
}

impl Metric {
    fn render(&self, metrics: &Metrics, gauges: &Gauges, budget: &Budget, out: &mut String) {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let name = self.name;
        let kind = match self.read {
            Read::Counter(_) | Read::ByReason(_) => "counter",
            Read::Gauge(_) | Read::Arenas(_) => "gauge",
            Read::Histogram(_) => "histogram",
        };
        let _ = writeln!(
            out,
            "# HELP videomeet_{name} {}\n# TYPE videomeet_{name} {kind}",
            self.help
        );
        match self.read {
            Read::Counter(field) => {
                let _ = writeln!(out, "videomeet_{name} {}", get(field(metrics)));
            }
            Read::Gauge(read) => {
                let _ = writeln!(out, "videomeet_{name} {}", read(gauges, budget));
            }
            Read::ByReason(reasons) => {
                for (reason, field) in reasons {
                    let _ = writeln!(
                        out,
                        "videomeet_{name}{{reason=\"{reason}\"}} {}",
                        get(field(metrics))
                    );
                }
            }
            Read::Histogram(field) => field(metrics).render(&format!("videomeet_{name}"), out),
            Read::Arenas(capacity) => {
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
                        "videomeet_{name}{{arena=\"{}\"}} {}\nvideomeet_{capacity}{{arena=\"{}\"}} {}",
                        arena.name,
                        arena.used(),
                        arena.name,
                        arena.capacity()
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::limits::Limits;

    fn render(metrics: &Metrics) -> String {
        let budget = Budget::new(&Limits::shipped());
        metrics.render(
            Gauges {
                rooms: 2,
                participants: 3,
            },
            &budget,
        )
    }

    #[test]
    fn names_are_unique_and_follow_prometheus_conventions() {
        for (i, metric) in TABLE.iter().enumerate() {
            assert!(TABLE[i + 1..].iter().all(|m| m.name != metric.name));
            let counter = matches!(metric.read, Read::Counter(_) | Read::ByReason(_));
            assert_eq!(metric.name.ends_with("_total"), counter, "{}", metric.name);
            assert!(metric.help.ends_with('.'), "{}", metric.name);
        }
    }

    #[test]
    fn every_counter_shows_its_own_field() {
        let metrics = Metrics::default();
        let mut expected = Vec::new();
        let mut n = 0;
        for metric in TABLE {
            let mut count = |field: Field, line: String| {
                n += 1;
                field(&metrics).fetch_add(n, Ordering::Relaxed);
                expected.push(format!("{line} {n}\n"));
            };
            match metric.read {
                Read::Counter(field) => count(field, format!("videomeet_{}", metric.name)),
                Read::ByReason(reasons) => {
                    for (reason, field) in reasons {
                        let line = format!("videomeet_{}{{reason=\"{reason}\"}}", metric.name);
                        count(*field, line);
                    }
                }
                Read::Gauge(_) | Read::Arenas(_) | Read::Histogram(_) => {}
            }
        }
        let text = render(&metrics);
        for line in expected {
            assert!(text.contains(&line), "missing {line}");
        }
        assert!(text.contains("# HELP videomeet_rooms Rooms held in memory.\n# TYPE videomeet_rooms gauge\nvideomeet_rooms 2\n"));
        assert!(text.contains("videomeet_participants 3\n"));
        assert!(text.contains("videomeet_arena_capacity{arena=\"sockets\"} 10240\n"));
    }

    #[test]
    fn a_histogram_renders_cumulative_buckets_in_seconds() {
        let metrics = Metrics::default();
        for us in [10, 50, 51, 999, 1_000, 250_000] {
            metrics.relay.observe_us(us);
        }
        let text = render(&metrics);
        assert!(text.contains("# TYPE videomeet_relay_seconds histogram\n"));
        for line in [
            "videomeet_relay_seconds_bucket{le=\"0.00005\"} 2\n",
            "videomeet_relay_seconds_bucket{le=\"0.0001\"} 3\n",
            "videomeet_relay_seconds_bucket{le=\"0.0005\"} 3\n",
            "videomeet_relay_seconds_bucket{le=\"0.001\"} 5\n",
            "videomeet_relay_seconds_bucket{le=\"0.1\"} 5\n",
            "videomeet_relay_seconds_bucket{le=\"+Inf\"} 6\n",
            "videomeet_relay_seconds_sum 0.25211\n",
            "videomeet_relay_seconds_count 6\n",
        ] {
            assert!(text.contains(line), "missing {line}");
        }
    }
}
