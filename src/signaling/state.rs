//! What every task shares: the settings, the rooms behind their one lock, the budget, the counters.

use std::future::Ready;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::Either;
use serde_json::value::RawValue;
use tokio::sync::futures::Notified;
use tokio::sync::watch;

use crate::admission::budget::{Budget, Permit};
use crate::admission::guard::{self, Guard};
use crate::core::limits::Limits;
use crate::core::rooms::{ConnId, RoomLimits, Rooms};
use crate::ops::config::Config;
use crate::ops::metrics::{Gauges, Metrics};
use crate::signaling::protocol::SeatId;
use crate::signaling::session::Outbox;

pub struct State {
    pub config: Config,
    rooms: Mutex<Rooms<Outbox>>,
    pub budget: Arc<Budget>,
    /// Per-address limits (connections, sockets, joins, passwords).
    pub guard: Arc<Guard>,
    pub metrics: Metrics,
    /// `config.ice_servers`, checked once, sent verbatim in every `joined`.
    pub ice_servers: Box<RawValue>,
    /// Becomes true when the server is shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// Notified (every waiter) once `shutdown` has turned true: what [`State::stopped`] waits
    /// on.
    pub stop: tokio::sync::Notify,
    next_conn: AtomicU64,
    /// The built-in STUN/TURN server, once its sockets are bound.
    pub relay: std::sync::OnceLock<RelayInfo>,
    /// Open HTTP connections, oldest first, for when their arena is full.
    pub connections: crate::admission::evict::Oldest,
    /// Password hashing is slow on purpose, so it runs on a bounded number of threads: joins'
    /// checks on their own, and hosts' `set-password` on one of its own, so that twelve host
    /// sockets setting passwords in a loop cannot keep a Pi's cores busy and delay every
    /// honest password join (issue 13.7).
    pub verifying: tokio::sync::Semaphore,
    pub hashing: tokio::sync::Semaphore,
    /// The names requests may give in `Host` (against DNS rebinding).
    pub hosts: crate::ops::hosts::KnownHosts,
}

/// What `joined` needs to hand out the built-in STUN/TURN server.
#[derive(Debug)]
pub struct RelayInfo {
    pub port: u16,
    /// TURN over TLS, when it runs (by default only with the operator's certificate: browsers
    /// refuse a self-signed one for TURN without asking; `--turns-listen` turns it on anyway).
    pub tls_port: Option<u16>,
    /// Credentials for the built-in relay: a random secret of this process, the configured TTL.
    pub turn: crate::core::credentials::TurnConfig,
}

impl State {
    pub fn new(config: Config, shutdown: watch::Receiver<bool>) -> State {
        let limits = &config.limits;
        let mut seed = [0u8; 4];
        getrandom::fill(&mut seed).expect("the OS random source is available");
        // Seat ids start at a random point in 1..=2^31 (still exact in a JS number), so that a
        // restarted server does not give a returning client someone else's old id.
        let first_seat = u64::from(u32::from_le_bytes(seed) >> 1) + 1;
        let rooms = Rooms::new(
            RoomLimits {
                peers_per_room: limits.peers_per_room as usize,
                max_rooms: limits.max_rooms() as usize,
                rooms_per_address: limits.ip_rooms as usize,
                ttl: Duration::from_secs(limits.room_ttl_secs),
                grace: Duration::from_secs(limits.seat_grace_secs),
                knock_retry: Duration::from_secs(limits.knock_retry_secs),
            },
            first_seat,
        );
        let ice_servers = RawValue::from_string(config.ice_servers.clone())
            .unwrap_or_else(|_| RawValue::from_string("[]".into()).expect("[] is JSON"));
        State {
            budget: Arc::new(Budget::new(limits)),
            guard: Arc::new(Guard::new(limits)),
            rooms: Mutex::new(rooms),
            metrics: Metrics::default(),
            ice_servers,
            shutdown,
            stop: tokio::sync::Notify::new(),
            next_conn: AtomicU64::new(1),
            relay: std::sync::OnceLock::new(),
            connections: crate::admission::evict::Oldest::default(),
            verifying: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            hashing: tokio::sync::Semaphore::new(1),
            hosts: crate::ops::hosts::KnownHosts::new(&config.allowed_hosts),
            config,
        }
    }

    /// The `ice_servers` for a `joined`: the configured list; then the built-in STUN server at
    /// the host the browser used (`host`, without a port); then a TURN credential made for this
    /// seat, for the configured TURN server if there is one, else for the built-in relay.
    pub fn ice_servers_for(
        &self,
        seat: SeatId,
        host: Option<&str>,
    ) -> std::borrow::Cow<'_, RawValue> {
        let builtin = self.relay.get().zip(host);
        if !self.config.turn.enabled() && builtin.is_none() {
            return std::borrow::Cow::Borrowed(&self.ice_servers);
        }
        let now = crate::util::time::unix_now();
        let mut base = self.ice_servers.clone();
        let mut turn = self.config.turn.clone();
        if let Some((relay, host)) = builtin {
            let at = format!("{host}:{}", relay.port);
            let mut list: Vec<serde_json::Value> =
                serde_json::from_str(base.get()).unwrap_or_default();
            list.push(serde_json::json!({ "urls": format!("stun:{at}") }));
            base = RawValue::from_string(serde_json::Value::from(list).to_string()).unwrap_or(base);
            if !turn.enabled() {
                let mut urls = vec![
                    format!("turn:{at}?transport=udp"),
                    format!("turn:{at}?transport=tcp"),
                ];
                if let Some(port) = relay.tls_port {
                    urls.push(format!("turns:{host}:{port}?transport=tcp"));
                }
                turn = crate::core::credentials::TurnConfig {
                    urls,
                    ..relay.turn.clone()
                };
            }
        }
        std::borrow::Cow::Owned(turn.ice_servers(&base, &seat.to_string(), now))
    }

    /// Whether the per-address capacity limits count `ip` (see [`guard::counted`]).
    pub fn limits_apply_to(&self, ip: std::net::IpAddr) -> bool {
        guard::counted(ip, self.config.limit_loopback)
    }

    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// The room map. Held for microseconds, never across an `.await`.
    pub fn rooms(&self) -> MutexGuard<'_, Rooms<Outbox>> {
        // A panic while holding the lock aborts the process in release builds, so a poisoned
        // lock can only be seen in tests; the data is still consistent enough to read.
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Completes once shutdown has begun. A `Notify` wait (72 bytes) rather than one on the
    /// watch (176): every session's task and every HTTP connection's holds one. The wait is
    /// registered before the flag is read, so a shutdown between the two is not missed.
    pub fn stopped(&self) -> Either<Notified<'_>, Ready<()>> {
        let notified = self.stop.notified();
        if self.is_shutting_down() {
            Either::Right(std::future::ready(()))
        } else {
            Either::Left(notified)
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub fn render_metrics(&self) -> String {
        let gauges = {
            let rooms = self.rooms();
            Gauges {
                rooms: rooms.room_count(),
                participants: rooms.seat_count(),
            }
        };
        self.metrics.render(gauges, &self.budget)
    }
}

/// One open WebSocket's unit of the socket arena, returned when dropped.
pub type SocketPermit = Permit;

impl State {
    /// A socket permit if the socket arena and the heap both have room, and the server is not
    /// stopping.
    pub fn socket_permit(&self) -> Option<SocketPermit> {
        if self.is_shutting_down() || !self.budget.heap_has_room() {
            return None;
        }
        Permit::acquire(&self.budget, |b| &b.sockets)
    }
}

/// What the TURN server sees of the shared state (`turn::TurnContext`): the seat directory,
/// the counters, the budget, the guard and the settings it needs, never the state itself.
impl crate::turn::Seats for State {
    fn is_seated(&self, seat: SeatId) -> bool {
        self.rooms().seat_ids().any(|s| s == seat)
    }

    fn seated(&self, seats: &[SeatId]) -> std::collections::HashSet<SeatId> {
        let all: std::collections::HashSet<SeatId> = self.rooms().seat_ids().collect();
        seats.iter().copied().filter(|s| all.contains(s)).collect()
    }
}

impl AsRef<Metrics> for State {
    fn as_ref(&self) -> &Metrics {
        &self.metrics
    }
}

impl From<Arc<State>> for crate::turn::TurnContext {
    fn from(state: Arc<State>) -> crate::turn::TurnContext {
        crate::turn::TurnContext {
            budget: state.budget.clone(),
            guard: state.guard.clone(),
            limits: state.config.limits.clone(),
            shutdown: state.shutdown.clone(),
            relay_ports: state.config.relay_ports,
            relay_allow: state.config.relay_allow.clone(),
            public_ip: state.config.public_ip,
            limit_loopback: state.config.limit_loopback,
            metrics: state.clone(),
            seats: state,
        }
    }
}
