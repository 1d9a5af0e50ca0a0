//! Per-address limits, so that one host (or one flood) cannot take what belongs to everyone:
//! new connections, open WebSockets, joins and wrong room passwords, each counted per client
//! address. An IPv6 client is counted by its /64, since one home or one VPS gets a whole /64.
//!
//! Every limit comes from `[rates]` in `memlimit.toml`. New connections, joins and wrong
//! passwords are token buckets (a burst, then a steady rate); what an address holds open at once
//! (WebSockets, TURN streams, HTTP connections) is a count under a cap. The map of addresses is
//! bounded (`rates.tracked_addresses`); idle entries are swept, and when it is full a new
//! address is refused rather than the map growing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::admission::budget::AddressShare;
pub use crate::core::addr::AddrKey;
use crate::core::bucket::{Bucket, Rate};
use crate::core::limits::Limits;
use crate::core::rooms::RoomName;

/// A message bucket for one socket; it lives in the session, not in the shared map.
#[derive(Debug)]
pub struct MessageRate {
    rate: Rate,
    bucket: Bucket,
}

impl MessageRate {
    pub fn new(limits: &Limits, now: Instant) -> MessageRate {
        let rate = Rate {
            burst: limits.socket_messages_burst as f64,
            per_sec: limits.socket_messages_per_sec as f64,
        };
        MessageRate {
            rate,
            bucket: Bucket::full(rate, now),
        }
    }

    /// True if one more message may go now.
    pub fn allow(&mut self, now: Instant) -> bool {
        self.bucket.take(self.rate, now)
    }
}

/// What an address holds open at once, each under its own cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// WebSockets (`rates.ip_sockets`).
    Socket = 0,
    /// TURN connections over TCP or TLS (`rates.ip_turn_streams`).
    TurnStream = 1,
    /// HTTP connections not (yet) upgraded: page loads, requests still sending their headers
    /// (`rates.ip_open_connections`).
    Connection = 2,
}

#[derive(Debug)]
struct Entry {
    /// How many of each [`Open`] kind, by its index.
    open: [u32; 3],
    /// The address's share of the in-flight arena, which all its sockets draw on together.
    in_flight: Arc<AddressShare>,
    connections: Bucket,
    joins: Bucket,
}

#[derive(Debug, Clone, Copy)]
struct Rates {
    open: [u32; 3],
    in_flight_bytes: u64,
    connections: Rate,
    joins: Rate,
    passwords: Rate,
    tracked: usize,
}

/// Why an address was refused, for the metrics and the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many at once or too fast from this address.
    Address,
    /// The table of addresses is full (a flood from many addresses).
    Table,
}

/// Whether the per-address limits count a client at `ip`: always, but for loopback, which is
/// counted only with `--limit-loopback` (a local reverse proxy not listed in
/// `--trusted-proxies` is one loopback address for all its users; the hostile tests turn it on
/// to attack from 127.x.y.z). The one rule for HTTP, WebSockets and the relay.
pub fn counted(ip: IpAddr, limit_loopback: bool) -> bool {
    limit_loopback || !ip.to_canonical().is_loopback()
}

pub struct Guard {
    rates: Rates,
    addresses: Mutex<HashMap<AddrKey, Entry>>,
    passwords: Mutex<HashMap<(AddrKey, RoomName), Bucket>>,
}

fn per_min(burst: u64, per_min: u64) -> Rate {
    Rate::per_min(burst, per_min)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Guard {
    pub fn new(limits: &Limits) -> Guard {
        Guard {
            rates: Rates {
                open: [
                    limits.ip_sockets as u32,
                    limits.ip_turn_streams as u32,
                    limits.ip_open_connections as u32,
                ],
                in_flight_bytes: limits.ip_in_flight_kib * 1024,
                connections: per_min(limits.ip_connections_burst, limits.ip_connections_per_min),
                joins: per_min(limits.ip_joins_burst, limits.ip_joins_per_min),
                passwords: per_min(
                    limits.password_attempts_burst,
                    limits.password_attempts_per_min,
                ),
                tracked: limits.tracked_addresses as usize,
            },
            addresses: Mutex::new(HashMap::new()),
            passwords: Mutex::new(HashMap::new()),
        }
    }

    fn with_entry<T>(
        &self,
        ip: IpAddr,
        now: Instant,
        f: impl FnOnce(&mut Entry, &Rates) -> Result<T, Refused>,
    ) -> Result<T, Refused> {
        let mut map = lock(&self.addresses);
        let key = AddrKey::of(ip);
        if !map.contains_key(&key) {
            if map.len() >= self.rates.tracked {
                return Err(Refused::Table);
            }
            map.insert(
                key,
                Entry {
                    open: [0; 3],
                    in_flight: Arc::new(AddressShare::new(self.rates.in_flight_bytes)),
                    connections: Bucket::full(self.rates.connections, now),
                    joins: Bucket::full(self.rates.joins, now),
                },
            );
        }
        let entry = map.get_mut(&key).expect("inserted above");
        f(entry, &self.rates)
    }

    /// A new TCP connection from `ip`.
    pub fn connection(&self, ip: IpAddr, now: Instant) -> Result<(), Refused> {
        self.with_entry(ip, now, |e, r| {
            e.connections
                .take(r.connections, now)
                .then_some(())
                .ok_or(Refused::Address)
        })
    }

    /// One more `kind` open from `ip`, within its cap; the slot is given back when dropped.
    pub fn open(self: &Arc<Self>, kind: Open, ip: IpAddr, now: Instant) -> Result<Slot, Refused> {
        let (in_flight, before) = self.with_entry(ip, now, |e, r| {
            let count = &mut e.open[kind as usize];
            if *count >= r.open[kind as usize] {
                return Err(Refused::Address);
            }
            *count += 1;
            Ok((e.in_flight.clone(), *count - 1))
        })?;
        Ok(Slot {
            guard: self.clone(),
            key: AddrKey::of(ip),
            kind,
            in_flight,
            before,
        })
    }

    /// A WebSocket from `ip`; the slot is given back when dropped.
    pub fn open_socket(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Slot, Refused> {
        self.open(Open::Socket, ip, now)
    }

    /// A join from `ip`.
    pub fn join(&self, ip: IpAddr, now: Instant) -> Result<(), Refused> {
        self.with_entry(ip, now, |e, r| {
            e.joins
                .take(r.joins, now)
                .then_some(())
                .ok_or(Refused::Address)
        })
    }

    /// Whether `ip` may try a password for `room` now (checked before the slow hash runs).
    pub fn password_allowed(&self, ip: IpAddr, room: &RoomName, now: Instant) -> bool {
        let mut map = lock(&self.passwords);
        match map.get_mut(&(AddrKey::of(ip), room.clone())) {
            Some(bucket) => bucket.has(self.rates.passwords, now),
            None => map.len() < self.rates.tracked,
        }
    }

    /// A wrong password from `ip` for `room`: one attempt spent.
    pub fn password_failed(&self, ip: IpAddr, room: &RoomName, now: Instant) {
        let mut map = lock(&self.passwords);
        let key = (AddrKey::of(ip), room.clone());
        if !map.contains_key(&key) && map.len() >= self.rates.tracked {
            return;
        }
        let rate = self.rates.passwords;
        let bucket = map.entry(key).or_insert_with(|| Bucket::full(rate, now));
        bucket.take(rate, now);
    }

    /// Forgets addresses with nothing open and nothing spent. Returns how many are tracked.
    pub fn sweep(&self, now: Instant) -> usize {
        let rates = self.rates;
        let mut map = lock(&self.addresses);
        map.retain(|_, e| {
            e.open.iter().any(|n| *n > 0)
                || !e.connections.is_full(rates.connections, now)
                || !e.joins.is_full(rates.joins, now)
        });
        lock(&self.passwords).retain(|_, b| !b.is_full(rates.passwords, now));
        map.len()
    }

    /// Open WebSockets counted for `ip`'s address.
    #[cfg(test)]
    pub fn sockets_of(&self, ip: IpAddr) -> u32 {
        lock(&self.addresses)
            .get(&AddrKey::of(ip))
            .map_or(0, |e| e.open[Open::Socket as usize])
    }
}

/// One open thing's place in its address's count.
pub struct Slot {
    guard: Arc<Guard>,
    key: AddrKey,
    kind: Open,
    in_flight: Arc<AddressShare>,
    /// How many of its kind the address held before this one.
    before: u32,
}

/// The slot of a WebSocket.
pub type SocketSlot = Slot;
/// The slot of a TURN connection over TCP or TLS.
pub type TurnStreamSlot = Slot;

impl Slot {
    /// The address's share of the in-flight arena (`rates.ip_in_flight_kib`).
    pub fn in_flight_share(&self) -> Arc<AddressShare> {
        self.in_flight.clone()
    }

    /// How many of its kind the address held when this one opened.
    pub fn before(&self) -> u32 {
        self.before
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(e) = lock(&self.guard.addresses).get_mut(&self.key) {
            let count = &mut e.open[self.kind as usize];
            *count = count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn loopback_is_counted_only_with_limit_loopback_and_in_every_spelling() {
        for ip in ["127.0.0.1", "127.2.3.4", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!counted(ip, false), "{ip} exempt by default");
            assert!(counted(ip, true), "{ip} counted with --limit-loopback");
        }
        for ip in ["192.168.1.5", "203.0.113.9", "2001:db8::1"] {
            assert!(counted(ip.parse().unwrap(), false), "{ip} always counted");
        }
    }

    fn limits() -> Limits {
        let mut l = Limits::shipped();
        l.ip_sockets = 2;
        l.ip_connections_burst = 3;
        l.ip_connections_per_min = 60;
        l.ip_joins_burst = 2;
        l.ip_joins_per_min = 6;
        l.password_attempts_burst = 5;
        l.password_attempts_per_min = 5;
        l.tracked_addresses = 4;
        l
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            AddrKey::of(ip("2001:db8:1:2::5")),
            AddrKey::of(ip("2001:db8:1:2:ffff::1"))
        );
        assert_ne!(
            AddrKey::of(ip("2001:db8:1:2::5")),
            AddrKey::of(ip("2001:db8:1:3::5"))
        );
        assert_eq!(
            AddrKey::of(ip("::ffff:10.0.0.1")),
            AddrKey::of(ip("10.0.0.1"))
        );
    }

    #[test]
    fn connections_burst_then_steady() {
        let g = Guard::new(&limits());
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(g.connection(ip("10.0.0.1"), t), Ok(()));
        }
        assert_eq!(g.connection(ip("10.0.0.1"), t), Err(Refused::Address));
        assert_eq!(
            g.connection(ip("10.0.0.2"), t),
            Ok(()),
            "others are not affected"
        );
        assert_eq!(
            g.connection(ip("10.0.0.1"), t + Duration::from_secs(1)),
            Ok(()),
            "one a second"
        );
        assert!(g
            .connection(ip("10.0.0.1"), t + Duration::from_secs(1))
            .is_err());
    }

    #[test]
    fn sockets_are_given_back() {
        let g = Arc::new(Guard::new(&limits()));
        let t = Instant::now();
        let a = g.open_socket(ip("10.0.0.1"), t).unwrap();
        let _b = g.open_socket(ip("10.0.0.1"), t).unwrap();
        assert!(g.open_socket(ip("10.0.0.1"), t).is_err());
        drop(a);
        assert_eq!(g.sockets_of(ip("10.0.0.1")), 1);
        assert!(g.open_socket(ip("10.0.0.1"), t).is_ok());
    }

    #[test]
    fn joins_per_minute() {
        let g = Guard::new(&limits());
        let t = Instant::now();
        assert!(g.join(ip("10.0.0.1"), t).is_ok());
        assert!(g.join(ip("10.0.0.1"), t).is_ok());
        assert!(g.join(ip("10.0.0.1"), t).is_err());
        assert!(g.join(ip("10.0.0.1"), t + Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn five_wrong_passwords_then_one_every_twelve_seconds_per_room() {
        let g = Guard::new(&limits());
        let t = Instant::now();
        let room = RoomName::try_from("family").unwrap();
        let other = RoomName::try_from("other").unwrap();
        for _ in 0..5 {
            assert!(g.password_allowed(ip("10.0.0.1"), &room, t));
            g.password_failed(ip("10.0.0.1"), &room, t);
        }
        assert!(!g.password_allowed(ip("10.0.0.1"), &room, t));
        assert!(g.password_allowed(ip("10.0.0.1"), &other, t), "per room");
        assert!(g.password_allowed(ip("10.0.0.2"), &room, t), "per address");
        assert!(!g.password_allowed(ip("10.0.0.1"), &room, t + Duration::from_secs(11)));
        assert!(g.password_allowed(ip("10.0.0.1"), &room, t + Duration::from_secs(12)));
    }

    #[test]
    fn the_table_is_bounded_and_swept() {
        let g = Arc::new(Guard::new(&limits()));
        let t = Instant::now();
        let held = g.open_socket(ip("10.0.0.1"), t).unwrap();
        for i in 2..=4 {
            assert!(g.connection(ip(&format!("10.0.0.{i}")), t).is_ok());
        }
        assert_eq!(g.connection(ip("10.0.0.5"), t), Err(Refused::Table));
        // A minute later the idle ones are forgotten; the one with an open socket stays.
        assert_eq!(g.sweep(t + Duration::from_secs(60)), 1);
        assert!(g
            .connection(ip("10.0.0.5"), t + Duration::from_secs(60))
            .is_ok());
        drop(held);
    }

    #[test]
    fn message_rate_burst_then_steady() {
        let mut l = limits();
        l.socket_messages_burst = 3;
        l.socket_messages_per_sec = 2;
        let t = Instant::now();
        let mut m = MessageRate::new(&l, t);
        assert!(m.allow(t) && m.allow(t) && m.allow(t));
        assert!(!m.allow(t));
        assert!(m.allow(t + Duration::from_millis(500)));
        assert!(!m.allow(t + Duration::from_millis(500)));
    }
}
