//! The built-in STUN/TURN server (RFC 8489, RFC 8656), by parts (the REST credentials it checks
//! and `joined` hands out are `core::credentials`):
//!
//! - `codec`: the wire format and ChannelData, parse and build; nothing else. Fuzzed.
//! - `auth`: the long-term credential check, stateless nonces with their expiry, and the rate
//!   of answers to requests without a valid credential.
//! - `allocations`: the allocation table and every rule about it (quotas, caps, lifetimes,
//!   expiry, a seat gone, bandwidth buckets), with `now` passed in.
//! - `peers`: the one peer rule, used for client to peer and for peer to client alike.
//! - `server`: the sockets and tasks, which apply what the parts above decide.
//!
//! The server sees the rest of the program only through [`TurnContext`]: the seat directory
//! ([`Seats`]: is this seat alive?), the budget, the per-address guard, the counters, the
//! numbers of `memlimit.toml` and the few settings it needs. Never the whole shared state.
//!
//! **Invariants.** An allocation exists only for a seat that exists: admission asks the seat
//! directory, and the housekeeping ends an allocation within a second of its seat going.
//! `codec`, `auth`, `allocations` and `peers` touch no socket, no task and no
//! clock. A packet reaches a peer on this host only on one of our live relayed ports, in either
//! direction. Nothing waits: a full socket buffer or queue drops the packet, as UDP would.

pub mod allocations;
pub mod auth;
pub mod codec;
pub mod peers;
pub mod server;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::watch;

use crate::admission::budget::Budget;
use crate::admission::guard::{self, Guard};
use crate::core::ids::SeatId;
use crate::core::limits::Limits;
use crate::ops::metrics::Metrics;

/// The seat directory, as the relay needs it: a credential is good only while its seat is held.
pub trait Seats: Send + Sync {
    /// Whether `seat` is held in some room now (a seat in its grace period counts).
    fn is_seated(&self, seat: SeatId) -> bool;

    /// Which of `seats` are held now. The housekeeping asks this every second for the seats
    /// that hold allocations; a directory behind a lock answers all of them under one look.
    fn seated(&self, seats: &[SeatId]) -> HashSet<SeatId> {
        seats
            .iter()
            .copied()
            .filter(|&s| self.is_seated(s))
            .collect()
    }
}

/// Everything the TURN server uses from the rest of the program.
pub struct TurnContext {
    pub seats: Arc<dyn Seats>,
    /// The counters it bumps (`turn_*`, `stun_*`, and the refusals it shares with HTTP).
    pub metrics: Arc<dyn AsRef<Metrics> + Send + Sync>,
    /// The `turn_allocations` and `turn_streams` arenas, and the heap ceiling.
    pub budget: Arc<Budget>,
    /// Per-address connection rates and open TURN streams.
    pub guard: Arc<Guard>,
    pub limits: Limits,
    /// Becomes true when the server is shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// `--relay-ports`: the range relayed addresses are bound in.
    pub relay_ports: (u16, u16),
    /// `--relay-allow`: networks peers may be in even though they are not public.
    pub relay_allow: Vec<(IpAddr, u8)>,
    /// `--public-ip`: the address relayed addresses are given as, and one of this host's.
    pub public_ip: Option<IpAddr>,
    /// `--limit-loopback`: whether loopback clients are counted by the per-address limits.
    pub limit_loopback: bool,
}

impl TurnContext {
    /// Whether the per-address limits count `ip`, by the same rule as HTTP and WebSockets
    /// ([`guard::counted`]).
    pub fn limits_apply_to(&self, ip: IpAddr) -> bool {
        guard::counted(ip, self.limit_loopback)
    }

    pub fn metrics(&self) -> &Metrics {
        (*self.metrics).as_ref()
    }

    /// Completes once shutdown has begun.
    pub async fn stopped(&self) {
        let mut rx = self.shutdown.clone();
        // The guard `wait_for` returns is not Send; drop it here, not in the caller's future.
        let _ = rx.wait_for(|stopping| *stopping).await.map(|_| ());
    }
}

#[cfg(test)]
mod tests {
    /// The parts that decide, each file's code before its tests.
    const PURE: [(&str, &str); 4] = [
        ("codec.rs", include_str!("codec.rs")),
        ("auth.rs", include_str!("auth.rs")),
        ("allocations.rs", include_str!("allocations.rs")),
        ("peers.rs", include_str!("peers.rs")),
    ];

    fn code(text: &str) -> &str {
        text.split("#[cfg(test)]").next().unwrap_or(text)
    }

    #[test]
    fn the_rules_touch_no_socket_task_or_clock() {
        for (file, text) in PURE {
            for word in [
                "tokio",
                "UdpSocket",
                "TcpListener",
                "Instant::now",
                "SystemTime",
            ] {
                assert!(!code(text).contains(word), "{file} names {word}");
            }
        }
    }

    #[test]
    fn the_server_never_sees_the_shared_state() {
        let server = ("server.rs", include_str!("server.rs"));
        for (file, text) in PURE.into_iter().chain([server]) {
            assert!(
                !text.contains(concat!("crate::", "signaling")),
                "{file} names the shared state"
            );
        }
    }
}
