//! The TURN allocations as plain data, and every rule about them (RFC 8656 and ours): who may
//! allocate (each seat's quota, each address's quota, the arena's last quarter kept for an
//! address's first few), how long an allocation lives (the lifetime clamp, refresh, delete,
//! expiry, its seat going), its permissions and channels (caps, lifetimes, rebinding), which
//! packets pass (the peer rule of `peers`, a permission, three bandwidth buckets).
//!
//! No sockets, no tasks, no clock: callers pass `now` and apply what they get back. What the
//! server keeps beside the rules for each allocation (its relayed socket, the task reading it,
//! its place in the arena) is the opaque `H`, handed back when the allocation ends so the caller
//! can close it.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::codec::CHANNELS;
use super::peers::PeerRule;
use crate::admission::guard::AddrKey;
use crate::core::bucket::{Bucket, Rate};
use crate::core::ids::SeatId;
use crate::core::limits::Limits;

/// The lifetime an Allocate or Refresh gets when it asks for none (RFC 8656 §3.2).
pub const DEFAULT_LIFETIME: u64 = 600;
/// A permission lasts five minutes unless refreshed (RFC 8656 §9).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// A channel binding lasts ten minutes unless refreshed (RFC 8656 §12).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// Of the allocation arena's last quarter, only an address's first few allocations may take
/// a place: a newcomer's browser can always relay its five peer connections, however many
/// allocations a few busy addresses hold.
pub const RESERVED_PER_ADDRESS: usize = 6;

/// Who an allocation belongs to: RFC 8656's 5-tuple, which for UDP is the client's address on
/// our one socket, for TCP the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    Udp(SocketAddr),
    Tcp(u64),
}

/// A TURN error response: its code and reason phrase (RFC 8656 §19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(pub u16, pub &'static str);

impl Refusal {
    pub const BAD_REQUEST: Refusal = Refusal(400, "Bad Request");
    pub const FORBIDDEN: Refusal = Refusal(403, "Forbidden");
    pub const MISMATCH: Refusal = Refusal(437, "Allocation Mismatch");
    pub const WRONG_CREDENTIALS: Refusal = Refusal(441, "Wrong Credentials");
    pub const PEER_FAMILY: Refusal = Refusal(443, "Peer Address Family Mismatch");
    pub const QUOTA: Refusal = Refusal(486, "Allocation Quota Reached");
    pub const CAPACITY: Refusal = Refusal(508, "Insufficient Capacity");

    pub fn code(self) -> u16 {
        self.0
    }
}

/// The numbers the rules use, from `memlimit.toml`.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Allocations one seat may hold at once (`turn.allocations_per_seat`).
    pub per_seat: u64,
    /// Allocations one address may hold at once (`rates.ip_allocations`).
    pub per_address: u64,
    /// Places in the allocation arena.
    pub arena: u64,
    pub permissions: usize,
    pub channels: usize,
    pub lifetime_max_secs: u64,
    /// Each allocation's bucket, each seat's (shared by its allocations), the relay's.
    pub allocation_rate: Rate,
    pub seat_rate: Rate,
    pub total_rate: Rate,
}

impl Caps {
    /// The caps of `limits`, with an allocation arena of `arena` places.
    pub fn of(limits: &Limits, arena: u64) -> Caps {
        Caps {
            per_seat: limits.allocations_per_seat,
            per_address: limits.ip_allocations,
            arena,
            permissions: limits.permissions_per_allocation as usize,
            channels: limits.channels_per_allocation as usize,
            lifetime_max_secs: limits.lifetime_max_secs,
            allocation_rate: Rate::kbit_per_sec(limits.allocation_kbit_per_sec),
            seat_rate: Rate::kbit_per_sec(limits.seat_kbit_per_sec),
            total_rate: Rate::kbit_per_sec(limits.total_mbit_per_sec * 1000),
        }
    }
}

/// The lifetime granted for a requested one (`None`: the client named none): the default when
/// not asked, never past `max`, and never under the default unless `max` is.
pub fn granted_lifetime(requested: Option<u32>, max: u64) -> u64 {
    requested
        .map_or(DEFAULT_LIFETIME, u64::from)
        .clamp(DEFAULT_LIFETIME.min(max), max)
}

/// What a new allocation is made of, once the caller has bound its relayed port.
#[derive(Debug, Clone)]
pub struct NewAllocation {
    pub seat: SeatId,
    pub username: String,
    /// The Allocate's transaction id, so a retransmitted Allocate gets the same success.
    pub txid: [u8; 12],
    /// The client's address as the relay sees it, for the per-address quota.
    pub client: IpAddr,
    pub relayed: SocketAddr,
    /// The LIFETIME the client asked for, if any.
    pub lifetime: Option<u32>,
}

struct Allocation<H> {
    io: H,
    seat: SeatId,
    username: String,
    txid: [u8; 12],
    client: IpAddr,
    relayed: SocketAddr,
    expires: Instant,
    permissions: Vec<(IpAddr, Instant)>,
    channels: Vec<Channel>,
    /// Bytes this allocation may still pass, both directions together.
    bucket: Bucket,
}

#[derive(Debug, Clone, Copy)]
struct Channel {
    number: u16,
    peer: SocketAddr,
    until: Instant,
}

impl<H> Allocation<H> {
    fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        let ip = ip.to_canonical();
        self.permissions
            .iter()
            .any(|(p, until)| *p == ip && *until > now)
    }

    /// Installs or refreshes the permission for `ip`; false if that would pass `cap`.
    fn permit(&mut self, ip: IpAddr, now: Instant, cap: usize) -> bool {
        let ip = ip.to_canonical();
        if let Some(entry) = self.permissions.iter_mut().find(|(p, _)| *p == ip) {
            entry.1 = now + PERMISSION_LIFETIME;
            return true;
        }
        if self.permissions.len() >= cap {
            return false;
        }
        self.permissions.push((ip, now + PERMISSION_LIFETIME));
        true
    }
}

/// Where a client's packet goes: the peer a Send indication names, or a bound channel's.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Peer(SocketAddr),
    Channel(u16),
}

/// What to do with one relayed packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<T> {
    /// No allocation, or no channel by that number: not ours to count.
    Unknown,
    /// Refused (a forbidden peer, no permission, or over a bandwidth bucket): drop and count.
    Dropped,
    /// Relay it.
    Pass(T),
}

impl<T> Verdict<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Verdict<U> {
        match self {
            Verdict::Unknown => Verdict::Unknown,
            Verdict::Dropped => Verdict::Dropped,
            Verdict::Pass(t) => Verdict::Pass(f(t)),
        }
    }
}

/// Every allocation, by client and by relayed port, with the seats' and the relay's buckets.
pub struct Allocations<H> {
    caps: Caps,
    peers: PeerRule,
    by_client: HashMap<ClientKey, Allocation<H>>,
    /// Our live relayed ports: the ports of this host a peer may be on (see `peers`), and which
    /// allocation a datagram on a relayed port is for.
    by_port: HashMap<u16, ClientKey>,
    /// Each seat's bandwidth bucket, shared by its allocations, kept until the sweep after its
    /// last allocation ends.
    seat_buckets: HashMap<SeatId, Bucket>,
    /// All relayed traffic together.
    total: Bucket,
}

impl<H> Allocations<H> {
    pub fn new(caps: Caps, peers: PeerRule, now: Instant) -> Allocations<H> {
        Allocations {
            total: Bucket::full(caps.total_rate, now),
            caps,
            peers,
            by_client: HashMap::new(),
            by_port: HashMap::new(),
            seat_buckets: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    pub fn has(&self, key: ClientKey) -> bool {
        self.by_client.contains_key(&key)
    }

    /// An Allocate on a 5-tuple that has an allocation: a retransmission of the Allocate that
    /// made it (same transaction, same username) gets the same relayed address and the lifetime
    /// left; any other is 437. `None`: no allocation yet.
    pub fn again(
        &self,
        key: ClientKey,
        username: &str,
        txid: [u8; 12],
        now: Instant,
    ) -> Option<Result<(SocketAddr, u64), Refusal>> {
        let existing = self.by_client.get(&key)?;
        Some(if existing.txid == txid && existing.username == username {
            let left = existing.expires.saturating_duration_since(now).as_secs();
            Ok((existing.relayed, left))
        } else {
            Err(Refusal::MISMATCH)
        })
    }

    /// The quotas of a new allocation for `seat` from `client` (`counted`: whether the
    /// per-address limits count that address). Ok: the arena may be filled up to that many
    /// places for it (the last quarter only for an address's first [`RESERVED_PER_ADDRESS`]).
    pub fn admit(&self, seat: SeatId, client: IpAddr, counted: bool) -> Result<u64, Refusal> {
        let of_seat = self.by_client.values().filter(|a| a.seat == seat).count() as u64;
        if of_seat >= self.caps.per_seat {
            return Err(Refusal::QUOTA);
        }
        let address = AddrKey::of(client);
        let of_address = if counted {
            self.by_client
                .values()
                .filter(|a| AddrKey::of(a.client) == address)
                .count()
        } else {
            0
        };
        if of_address as u64 >= self.caps.per_address {
            return Err(Refusal::QUOTA);
        }
        let arena = self.caps.arena;
        Ok(if of_address < RESERVED_PER_ADDRESS {
            arena
        } else {
            crate::admission::budget::open_part(arena)
        })
    }

    /// Adds an allocation admitted by [`Allocations::admit`], with the caller's `io`; returns
    /// its lifetime in seconds. `Err(io)` if the 5-tuple got an allocation meanwhile (two
    /// Allocates at once) or the port is already in the table: the caller closes `io`.
    pub fn insert(
        &mut self,
        key: ClientKey,
        new: NewAllocation,
        io: H,
        now: Instant,
    ) -> Result<u64, H> {
        let port = new.relayed.port();
        if self.by_client.contains_key(&key) || self.by_port.contains_key(&port) {
            return Err(io);
        }
        let lifetime = granted_lifetime(new.lifetime, self.caps.lifetime_max_secs);
        let seat_rate = self.caps.seat_rate;
        self.seat_buckets
            .entry(new.seat)
            .or_insert_with(|| Bucket::full(seat_rate, now));
        self.by_port.insert(port, key);
        self.by_client.insert(
            key,
            Allocation {
                io,
                seat: new.seat,
                username: new.username,
                txid: new.txid,
                client: new.client,
                relayed: new.relayed,
                expires: now + Duration::from_secs(lifetime),
                permissions: Vec::new(),
                channels: Vec::new(),
                bucket: Bucket::full(self.caps.allocation_rate, now),
            },
        );
        Ok(lifetime)
    }

    /// The client's allocation, made with this same username (441 otherwise; 437 if none).
    fn owned(&mut self, key: ClientKey, username: &str) -> Result<&mut Allocation<H>, Refusal> {
        let allocation = self.by_client.get_mut(&key).ok_or(Refusal::MISMATCH)?;
        if allocation.username != username {
            return Err(Refusal::WRONG_CREDENTIALS);
        }
        Ok(allocation)
    }

    /// Refresh: the lifetime granted (clamped like Allocate's), or 0, which deletes the
    /// allocation and hands back its `io`.
    pub fn refresh(
        &mut self,
        key: ClientKey,
        username: &str,
        requested: Option<u32>,
        now: Instant,
    ) -> Result<(u64, Option<H>), Refusal> {
        let max = self.caps.lifetime_max_secs;
        let allocation = self.owned(key, username)?;
        if requested == Some(0) {
            return Ok((0, self.remove(key)));
        }
        let lifetime = granted_lifetime(requested, max);
        allocation.expires = now + Duration::from_secs(lifetime);
        Ok((lifetime, None))
    }

    /// CreatePermission for every one of `peers`: all are checked against the peer rule before
    /// any is installed, but the permission cap may stop it part way (those before stay).
    pub fn permit(
        &mut self,
        key: ClientKey,
        username: &str,
        peers: &[SocketAddr],
        now: Instant,
    ) -> Result<(), Refusal> {
        let (cap, rule) = (self.caps.permissions, &self.peers);
        let allocation = self.by_client.get_mut(&key).ok_or(Refusal::MISMATCH)?;
        if allocation.username != username {
            return Err(Refusal::WRONG_CREDENTIALS);
        }
        if peers.is_empty() {
            return Err(Refusal::BAD_REQUEST);
        }
        for peer in peers {
            if !peer.is_ipv4() {
                return Err(Refusal::PEER_FAMILY);
            }
            if !rule.may_permit(peer.ip()) {
                return Err(Refusal::FORBIDDEN);
            }
        }
        allocation.permissions.retain(|(_, until)| *until > now);
        for peer in peers {
            if !allocation.permit(peer.ip(), now, cap) {
                return Err(Refusal::CAPACITY);
            }
        }
        Ok(())
    }

    /// ChannelBind of `number` to `peer` (either missing: 400): binds or refreshes it, and
    /// installs or refreshes the peer's permission (RFC 8656 §12.2). A number bound to another
    /// peer, or a peer bound to another number, is 400.
    pub fn bind_channel(
        &mut self,
        key: ClientKey,
        username: &str,
        number: Option<u16>,
        peer: Option<SocketAddr>,
        now: Instant,
    ) -> Result<(), Refusal> {
        let (caps, rule) = (self.caps, &self.peers);
        let allocation = self.by_client.get_mut(&key).ok_or(Refusal::MISMATCH)?;
        if allocation.username != username {
            return Err(Refusal::WRONG_CREDENTIALS);
        }
        let (Some(number), Some(peer)) = (number, peer) else {
            return Err(Refusal::BAD_REQUEST);
        };
        if !CHANNELS.contains(&number) {
            return Err(Refusal::BAD_REQUEST);
        }
        if !peer.is_ipv4() {
            return Err(Refusal::PEER_FAMILY);
        }
        if !rule.may_permit(peer.ip()) {
            return Err(Refusal::FORBIDDEN);
        }
        let channels = &mut allocation.channels;
        channels.retain(|c| c.until > now);
        let same = channels
            .iter()
            .position(|c| c.number == number && c.peer == peer);
        let clash = channels
            .iter()
            .any(|c| (c.number == number) != (c.peer == peer));
        if clash {
            return Err(Refusal::BAD_REQUEST);
        }
        let until = now + CHANNEL_LIFETIME;
        match same {
            Some(i) => channels[i].until = until,
            None if channels.len() < caps.channels => channels.push(Channel {
                number,
                peer,
                until,
            }),
            None => return Err(Refusal::CAPACITY),
        }
        allocation.permissions.retain(|(_, until)| *until > now);
        if !allocation.permit(peer.ip(), now, caps.permissions) {
            return Err(Refusal::CAPACITY);
        }
        Ok(())
    }

    /// Whether `port` is one of our live relayed ports.
    pub fn is_relayed_port(&self, port: u16) -> bool {
        self.by_port.contains_key(&port)
    }

    /// Client to peer: `bytes` from the client of `key` for `target`. Passes to an allowed peer
    /// with a permission, within the allocation's, the seat's and the relay's buckets; gives
    /// the peer and the allocation's `io` to send with.
    pub fn to_peer(
        &mut self,
        key: ClientKey,
        target: Target,
        bytes: usize,
        now: Instant,
    ) -> Verdict<(SocketAddr, &H)> {
        let Some(allocation) = self.by_client.get(&key) else {
            return Verdict::Unknown;
        };
        let peer = match target {
            Target::Peer(peer) => peer,
            Target::Channel(number) => match allocation
                .channels
                .iter()
                .find(|c| c.number == number && c.until > now)
            {
                Some(c) => c.peer,
                None => return Verdict::Unknown,
            },
        };
        let allowed = self.peers.allows(peer, |p| self.by_port.contains_key(&p));
        if !allowed || !allocation.permitted(peer.ip(), now) || !self.spend(key, bytes, now) {
            return Verdict::Dropped;
        }
        match self.by_client.get(&key) {
            Some(allocation) => Verdict::Pass((peer, &allocation.io)),
            None => Verdict::Unknown,
        }
    }

    /// Peer to client: `bytes` from `from` on relayed port `port`. Passes from an allowed peer
    /// with a permission, within the buckets; gives the channel bound to that peer, if any
    /// (ChannelData then, else a Data indication).
    pub fn from_peer(
        &mut self,
        port: u16,
        from: SocketAddr,
        bytes: usize,
        now: Instant,
    ) -> Verdict<Option<u16>> {
        let Some(&key) = self.by_port.get(&port) else {
            return Verdict::Unknown;
        };
        let Some(allocation) = self.by_client.get(&key) else {
            return Verdict::Unknown;
        };
        let allowed = self.peers.allows(from, |p| self.by_port.contains_key(&p));
        if !allowed || !allocation.permitted(from.ip(), now) {
            return Verdict::Dropped;
        }
        let channel = allocation
            .channels
            .iter()
            .find(|c| c.peer == from && c.until > now)
            .map(|c| c.number);
        if !self.spend(key, bytes, now) {
            return Verdict::Dropped;
        }
        Verdict::Pass(channel)
    }

    /// Takes `bytes` from the allocation's, the seat's and the relay's buckets, in that order
    /// (a later refusal does not give back what an earlier bucket gave); false means drop the
    /// packet, as a congested link would.
    fn spend(&mut self, key: ClientKey, bytes: usize, now: Instant) -> bool {
        let n = bytes as f64;
        let caps = &self.caps;
        let Some(allocation) = self.by_client.get_mut(&key) else {
            return false;
        };
        if !allocation.bucket.take_n(n, caps.allocation_rate, now) {
            return false;
        }
        let seat = self
            .seat_buckets
            .entry(allocation.seat)
            .or_insert_with(|| Bucket::full(caps.seat_rate, now));
        seat.take_n(n, caps.seat_rate, now) && self.total.take_n(n, caps.total_rate, now)
    }

    /// Ends the allocation of `key`, handing back its `io`.
    pub fn remove(&mut self, key: ClientKey) -> Option<H> {
        let allocation = self.by_client.remove(&key)?;
        self.by_port.remove(&allocation.relayed.port());
        Some(allocation.io)
    }

    /// The seats that hold allocations, each once: what to ask the seat directory about.
    pub fn seats(&self) -> Vec<SeatId> {
        let seats: HashSet<SeatId> = self.by_client.values().map(|a| a.seat).collect();
        seats.into_iter().collect()
    }

    /// Ends the allocations past their lifetime and those whose seat is `gone`, handing back
    /// their `io`s, and forgets the buckets of seats left without allocations.
    pub fn sweep(&mut self, now: Instant, gone: impl Fn(SeatId) -> bool) -> Vec<H> {
        let ended: Vec<ClientKey> = self
            .by_client
            .iter()
            .filter(|(_, a)| a.expires <= now || gone(a.seat))
            .map(|(k, _)| *k)
            .collect();
        let ios = ended.into_iter().filter_map(|k| self.remove(k)).collect();
        let held: HashSet<SeatId> = self.by_client.values().map(|a| a.seat).collect();
        self.seat_buckets.retain(|seat, _| held.contains(seat));
        ios
    }

    /// Ends every allocation (at shutdown).
    pub fn drain(&mut self) -> Vec<H> {
        self.by_port.clear();
        self.seat_buckets.clear();
        self.by_client.drain().map(|(_, a)| a.io).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped numbers where a test does not set its own: 16 a seat, 32 an address, an
    /// arena of 512, 16 permissions and channels, 3600 s at most; buckets wide open.
    fn caps() -> Caps {
        Caps {
            per_seat: 16,
            per_address: 32,
            arena: 512,
            permissions: 16,
            channels: 16,
            lifetime_max_secs: 3600,
            allocation_rate: Rate::kbit_per_sec(1_000_000),
            seat_rate: Rate::kbit_per_sec(1_000_000),
            total_rate: Rate::kbit_per_sec(1_000_000),
        }
    }

    /// This host: 127.0.0.1 and 192.168.1.10.
    fn table(caps: Caps, now: Instant) -> Allocations<u16> {
        let own = [
            "127.0.0.1".parse().unwrap(),
            "192.168.1.10".parse().unwrap(),
        ];
        Allocations::new(caps, PeerRule::new(own, Vec::new()), now)
    }

    fn udp(n: u16) -> ClientKey {
        ClientKey::Udp(SocketAddr::from(([203, 1, 113, 5], n)))
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Admits and inserts an allocation of `seat` from `client` on relayed port `port` (the
    /// io is the port); the refusal if the quotas say no.
    fn allocate(
        t: &mut Allocations<u16>,
        key: ClientKey,
        seat: u64,
        client: &str,
        port: u16,
        now: Instant,
    ) -> Result<u64, Refusal> {
        let client: IpAddr = client.parse().unwrap();
        t.admit(SeatId(seat), client, true)?;
        let new = NewAllocation {
            seat: SeatId(seat),
            username: format!("9999999999:{seat}"),
            txid: [port as u8; 12],
            client,
            relayed: SocketAddr::from(([127, 0, 0, 1], port)),
            lifetime: None,
        };
        Ok(t.insert(key, new, port, now).expect("a new 5-tuple"))
    }

    fn user(seat: u64) -> String {
        format!("9999999999:{seat}")
    }

    #[test]
    fn quota_per_seat_refuses_the_seventeenth() {
        let now = Instant::now();
        let mut t = table(caps(), now);
        for n in 0..16 {
            // From several addresses, so only the seat's quota can refuse.
            let client = format!("203.1.113.{}", n % 4);
            assert!(allocate(&mut t, udp(n), 7, &client, 50000 + n, now).is_ok());
        }
        assert_eq!(
            allocate(&mut t, udp(16), 7, "203.1.113.9", 50016, now),
            Err(Refusal::QUOTA)
        );
        assert!(
            allocate(&mut t, udp(17), 8, "203.1.113.9", 50017, now).is_ok(),
            "another seat"
        );
        t.remove(udp(0));
        assert!(allocate(&mut t, udp(16), 7, "203.1.113.9", 50016, now).is_ok());
    }

    #[test]
    fn per_address_quota_and_reserve() {
        let now = Instant::now();
        let mut t = table(
            Caps {
                per_seat: 100,
                per_address: 32,
                arena: 64,
                ..caps()
            },
            now,
        );
        let ip: IpAddr = "203.1.113.5".parse().unwrap();
        for n in 0..32u16 {
            // An address's first 6 may fill the whole arena; after, only its first three
            // quarters.
            let expect = if n < 6 { 64 } else { 48 };
            assert_eq!(t.admit(SeatId(1), ip, true), Ok(expect), "allocation {n}");
            allocate(&mut t, udp(n), 1, "203.1.113.5", 50000 + n, now).unwrap();
        }
        assert_eq!(t.admit(SeatId(1), ip, true), Err(Refusal::QUOTA));
        // Another address has its own quota and reserve.
        assert_eq!(
            t.admit(SeatId(1), "203.1.113.6".parse().unwrap(), true),
            Ok(64)
        );
        // An address the per-address limits do not count (loopback by default) has neither.
        assert_eq!(t.admit(SeatId(1), ip, false), Ok(64));
    }

    #[test]
    fn a_retransmitted_allocate_gets_the_same_answer_another_gets_437() {
        let now = Instant::now();
        let mut t = table(caps(), now);
        assert!(t.again(udp(1), &user(7), [1; 12], now).is_none());
        allocate(&mut t, udp(1), 7, "203.1.113.5", 50001, now).unwrap();
        let later = now + Duration::from_secs(100);
        let relayed = addr("127.0.0.1:50001");
        assert_eq!(
            t.again(udp(1), &user(7), [50001u16 as u8; 12], later),
            Some(Ok((relayed, 500)))
        );
        assert_eq!(
            t.again(udp(1), &user(7), [2; 12], later),
            Some(Err(Refusal::MISMATCH))
        );
        assert_eq!(
            t.again(udp(1), &user(8), [50001u16 as u8; 12], later),
            Some(Err(Refusal::MISMATCH))
        );
        // Two Allocates at once on one 5-tuple: the second's io comes back to be closed.
        let second = NewAllocation {
            seat: SeatId(7),
            username: user(7),
            txid: [3; 12],
            client: "203.1.113.5".parse().unwrap(),
            relayed: addr("127.0.0.1:50002"),
            lifetime: None,
        };
        assert_eq!(t.insert(udp(1), second, 50002, now), Err(50002));
    }

    #[test]
    fn lifetime_is_clamped_to_the_maximum() {
        assert_eq!(granted_lifetime(None, 3600), DEFAULT_LIFETIME);
        assert_eq!(granted_lifetime(Some(100_000), 3600), 3600);
        assert_eq!(granted_lifetime(Some(1200), 3600), 1200);
        // Never under the default: a client asking for 10 s would refresh itself to death.
        assert_eq!(granted_lifetime(Some(10), 3600), DEFAULT_LIFETIME);
        // Unless the operator's maximum is under it.
        assert_eq!(granted_lifetime(None, 300), 300);
        assert_eq!(granted_lifetime(Some(10), 300), 300);
        // And Allocate grants the clamped lifetime.
        let now = Instant::now();
        let mut t = table(caps(), now);
        let new = NewAllocation {
            seat: SeatId(7),
            username: user(7),
            txid: [1; 12],
            client: "203.1.113.5".parse().unwrap(),
            relayed: addr("127.0.0.1:50001"),
            lifetime: Some(u32::MAX),
        };
        assert_eq!(t.insert(udp(1), new, 50001, now), Ok(3600));
    }

    #[test]
    fn refresh_sets_the_lifetime_and_zero_deletes() {
        let now = Instant::now();
        let mut t = table(caps(), now);
        allocate(&mut t, udp(1), 7, "203.1.113.5", 50001, now).unwrap();
        assert_eq!(
            t.refresh(udp(1), &user(7), Some(100_000), now),
            Ok((3600, None))
        );
        let ended = t.sweep(now + Duration::from_secs(3599), |_| false);
        assert!(ended.is_empty(), "the refreshed lifetime holds");
        assert_eq!(
            t.refresh(udp(1), &user(7), Some(0), now),
            Ok((0, Some(50001)))
        );
        assert!(!t.has(udp(1)) && !t.is_relayed_port(50001));
        assert_eq!(
            t.refresh(udp(1), &user(7), None, now),
            Err(Refusal::MISMATCH)
        );
    }

    #[test]
    fn only_the_username_that_allocated_may_use_the_allocation() {
        let now = Instant::now();
        let mut t = table(caps(), now);
        allocate(&mut t, udp(1), 7, "203.1.113.5", 50001, now).unwrap();
        let peer = addr("8.8.8.8:3478");
        let wrong = Err(Refusal::WRONG_CREDENTIALS);
        assert_eq!(
            t.refresh(udp(1), &user(8), None, now),
            Err(Refusal::WRONG_CREDENTIALS)
        );
        assert_eq!(t.permit(udp(1), &user(8), &[peer], now), wrong);
        assert_eq!(
            t.bind_channel(udp(1), &user(8), Some(0x4000), Some(peer), now),
            wrong
        );
        assert_eq!(
            t.permit(udp(2), &user(7), &[peer], now),
            Err(Refusal::MISMATCH)
        );
    }

    #[test]
    fn permission_cap() {
        let now = Instant::now();
        let mut t = table(
            Caps {
                permissions: 3,
                ..caps()
            },
            now,
        );
        allocate(&mut t, udp(1), 7, "203.1.113.5", 50001, now).unwrap();
        let peers: Vec<SocketAddr> = (1..=4)
            .map(|n| SocketAddr::from(([8, 8, 8, n], 3478)))
            .collect();
        assert_eq!(t.permit(udp(1), &user(7), &peers[..3], now), Ok(()));
        assert_eq!(
            t.permit(udp(1), &user(7), &peers[3..], now),
            Err(Refusal::CAPACITY)
        );
        // Refreshing one held is no new permission; one that expired frees its place.
        assert_eq!(t.permit(udp(1), &user(7), &peers[..1], now), Ok(()));
        let later = now + PERMISSION_LIFETIME + Duration::from_secs(1);
        assert_eq!(t.permit(udp(1), &user(7), &peers[3..], later), Ok(()));
    }

    #[test]
    fn permissions_refuse_forbidden_and_ipv6_peers_and_empty_requests() {
        let now = Instant::now();
        let mut t = table(caps(), now);
        allocate(&mut t, udp(1), 7, "203.1.113.5", 50001, now).unwrap();
        let ask = |t: &mut Allocations<u16>, peers: &[&str]| {
            let peers: Vec<SocketAddr> = peers.iter().map(|p| addr(p)).collect();
            t.permit(udp(1), &user(7), &peers, now)
        };
        assert_eq!(ask(&mut t, &[]), Err(Refusal::BAD_REQUEST));
        assert_eq!(ask(&mut t, &["10.0.0.1:9"]), Err(Refusal::FORBIDDEN));
        assert_eq!(
            ask(&mut t, &["8.8.8.8:9", "192.168.1.1:9"]),
            Err(Refusal::FORBIDDEN),
            "one forbidden peer refuses the request"
        );
        assert_eq!(
            ask(&mut t, &["[2a00:1450::1]:9"]),
            Err(Refusal::PEER_FAMILY)
        );
        assert_eq!(
            ask(&mut t, &["127.0.0.1:50002"]),
            Ok(()),
            "this host's relays"
        );
    }

    #[test]
    fn channel_cap_and_rebind() {
        let now = Instant::now();
        let mut t = table(
            Caps {
                channels: 2,
                ..caps()
            },
            now,
        );
        allocate(&mut t, udp(1), 7, "203.1.113.5", 50001, now).unwrap();
        let (a, b, c) = (addr("8.8.8.1:1"), addr("8.8.8.2:2"), addr("8.8.8.3:3"));
        let mut bind = |number: u16, peer: SocketAddr, at: Instant| {
            t.bind_channel(udp(1), &user(7), Some(number), Some(peer), at)
        };
        assert_eq!(bind(0x4000, a, now), Ok(()));
        assert_eq!(bind(0x4001, b, now), Ok(()));
        assert_eq!(bind(0x4002, c, now), Err(Refusal::CAPACITY));
        // Rebinding the same number to the same peer refreshes it.
        assert_eq!(bind(0x4000, a, now), Ok(()));
        // A bound number for another peer, a bound peer on another number: 400.
        assert_eq!(bind(0x4000, b, now), Err(Refusal::BAD_REQUEST));
        assert_eq!(bind(0x4002, a, now), Err(Refusal::BAD_REQUEST));
        // Once a binding expires its number and its place are free again.
        let later = now + CHANNEL_LIFETIME + Duration::from_secs(1);
        assert_eq!(bind(0x4000, c, later), Ok(()));
        // Numbers outside the channel range, and missing attributes.
        assert_eq!(bind(0x3FFF, a, later), Err(Refusal::BAD_REQUEST));
        assert_eq!(bind(0x8000, a, later), Err(Refusal::BAD_REQUEST));
        assert_eq!(
            t.bind_channel(udp(1), &user(7), None, Some(a), later),
            Err(Refusal::BAD_REQUEST)
        );
    }

    #[test]
    fn a_channel_bind_installs_the_peers_permission() {
        let now = Instant::now();
        let mut t = table(caps(), now);
        allocate(&mut t, udp(1), 7, "203.1.113.5", 50001, now).unwrap();
        let peer = addr("8.8.8.8:3478");
        assert_eq!(t.from_peer(50001, peer, 10, now), Verdict::Dropped);
        t.bind_channel(udp(1), &user(7), Some(0x4000), Some(peer), now)
            .unwrap();
        assert_eq!(
            t.from_peer(50001, peer, 10, now),
            Verdict::Pass(Some(0x4000))
        );
        assert_eq!(
            t.to_peer(udp(1), Target::Channel(0x4000), 10, now),
            Verdict::Pass((peer, &50001))
        );
        assert_eq!(
            t.to_peer(udp(1), Target::Channel(0x4001), 10, now),
            Verdict::Unknown
        );
    }

    #[test]
    fn data_needs_a_live_permission() {
        let now = Instant::now();
        let mut t = table(caps(), now);
        allocate(&mut t, udp(1), 7, "203.1.113.5", 50001, now).unwrap();
        let peer = addr("8.8.8.8:3478");
        assert_eq!(
            t.to_peer(udp(1), Target::Peer(peer), 10, now),
            Verdict::Dropped
        );
        t.permit(udp(1), &user(7), &[peer], now).unwrap();
        assert_eq!(
            t.to_peer(udp(1), Target::Peer(peer), 10, now),
            Verdict::Pass((peer, &50001))
        );
        // Any port of a permitted address, both ways; no channel, so a Data indication.
        let other_port = addr("8.8.8.8:9");
        assert_eq!(t.from_peer(50001, other_port, 10, now), Verdict::Pass(None));
        let later = now + PERMISSION_LIFETIME;
        assert_eq!(t.from_peer(50001, peer, 10, later), Verdict::Dropped);
        assert_eq!(
            t.to_peer(udp(2), Target::Peer(peer), 10, now),
            Verdict::Unknown,
            "no allocation"
        );
        assert_eq!(t.from_peer(50009, peer, 10, now), Verdict::Unknown);
    }

    #[test]
    fn own_relayed_ports_rule_holds_both_ways() {
        let now = Instant::now();
        let mut t = table(caps(), now);
        allocate(&mut t, udp(1), 7, "203.1.113.5", 50001, now).unwrap();
        allocate(&mut t, udp(2), 8, "203.1.113.6", 50002, now).unwrap();
        // A permission for this host's address, as for another relayed address of ours.
        t.permit(udp(1), &user(7), &[addr("127.0.0.1:50002")], now)
            .unwrap();
        let send = |t: &mut Allocations<u16>, to: &str| {
            t.to_peer(udp(1), Target::Peer(addr(to)), 10, now)
                .map(|(p, _)| p)
        };
        assert_eq!(
            send(&mut t, "127.0.0.1:50002"),
            Verdict::Pass(addr("127.0.0.1:50002"))
        );
        assert_eq!(send(&mut t, "127.0.0.1:22"), Verdict::Dropped);
        assert_eq!(
            t.from_peer(50001, addr("127.0.0.1:50002"), 10, now),
            Verdict::Pass(None)
        );
        assert_eq!(
            t.from_peer(50001, addr("127.0.0.1:22"), 10, now),
            Verdict::Dropped
        );
        // A relayed port is ours only while its allocation lives, in both directions.
        t.remove(udp(2));
        assert_eq!(send(&mut t, "127.0.0.1:50002"), Verdict::Dropped);
        assert_eq!(
            t.from_peer(50001, addr("127.0.0.1:50002"), 10, now),
            Verdict::Dropped
        );
    }

    #[test]
    fn an_allocation_ends_with_its_lifetime() {
        let now = Instant::now();
        let mut t = table(caps(), now);
        allocate(&mut t, udp(1), 7, "203.1.113.5", 50001, now).unwrap();
        let lifetime = Duration::from_secs(DEFAULT_LIFETIME);
        assert!(t
            .sweep(now + lifetime - Duration::from_secs(1), |_| false)
            .is_empty());
        assert_eq!(t.sweep(now + lifetime, |_| false), vec![50001]);
        assert!(t.is_empty() && !t.is_relayed_port(50001));
    }

    #[test]
    fn allocations_of_a_gone_seat_end() {
        let now = Instant::now();
        let mut t = table(caps(), now);
        allocate(&mut t, udp(1), 7, "203.1.113.5", 50001, now).unwrap();
        allocate(&mut t, udp(2), 7, "203.1.113.5", 50002, now).unwrap();
        allocate(&mut t, udp(3), 8, "203.1.113.6", 50003, now).unwrap();
        let mut seats = t.seats();
        seats.sort();
        assert_eq!(seats, [SeatId(7), SeatId(8)]);
        let mut ended = t.sweep(now, |seat| seat == SeatId(7));
        ended.sort();
        assert_eq!(ended, [50001, 50002]);
        assert_eq!(t.seats(), [SeatId(8)]);
        assert!(t.has(udp(3)));
    }

    /// Drives `bytes` one way or the other (`out`: client to peer) through allocation `n`
    /// (relayed port 50000 + n) to or from a permitted public peer; whether it passed.
    fn pass(t: &mut Allocations<u16>, n: u16, out: bool, bytes: usize, now: Instant) -> bool {
        let peer = addr("8.8.8.8:3478");
        let verdict = if out {
            t.to_peer(udp(n), Target::Peer(peer), bytes, now)
                .map(|_| ())
        } else {
            t.from_peer(50000 + n, peer, bytes, now).map(|_| ())
        };
        verdict == Verdict::Pass(())
    }

    /// Allocations 1 and 2 of seat 7 and 3 of seat 8, each with a permission for 8.8.8.8.
    fn three_allocations(caps: Caps, now: Instant) -> Allocations<u16> {
        let mut t = table(caps, now);
        for (n, seat) in [(1, 7), (2, 7), (3, 8)] {
            allocate(&mut t, udp(n), seat, "203.1.113.5", 50000 + n, now).unwrap();
            t.permit(udp(n), &user(seat), &[addr("8.8.8.8:1")], now)
                .unwrap();
        }
        t
    }

    #[test]
    fn an_allocation_has_its_own_bandwidth_bucket_both_ways() {
        let now = Instant::now();
        // 1,000 bytes a second an allocation (a burst of 1,000).
        let rate = Rate::kbit_per_sec(8);
        let mut t = three_allocations(
            Caps {
                allocation_rate: rate,
                ..caps()
            },
            now,
        );
        assert!(pass(&mut t, 1, true, 600, now));
        assert!(
            !pass(&mut t, 1, false, 600, now),
            "both directions together"
        );
        assert!(pass(&mut t, 1, false, 400, now));
        assert!(
            pass(&mut t, 2, true, 1000, now),
            "another allocation has its own"
        );
        assert!(
            pass(&mut t, 1, true, 100, now + Duration::from_millis(100)),
            "refilled"
        );
    }

    #[test]
    fn a_seats_allocations_share_its_bucket() {
        let now = Instant::now();
        let seat_rate = Rate::kbit_per_sec(8);
        let mut t = three_allocations(
            Caps {
                seat_rate,
                ..caps()
            },
            now,
        );
        assert!(pass(&mut t, 1, true, 700, now));
        assert!(!pass(&mut t, 2, true, 700, now), "seat 7's bucket is spent");
        assert!(pass(&mut t, 3, true, 1000, now), "seat 8 has its own");
    }

    #[test]
    fn the_relay_has_one_bucket_for_all() {
        let now = Instant::now();
        let total_rate = Rate::kbit_per_sec(8);
        let mut t = three_allocations(
            Caps {
                total_rate,
                ..caps()
            },
            now,
        );
        assert!(pass(&mut t, 1, true, 700, now));
        assert!(
            !pass(&mut t, 3, false, 700, now),
            "another seat, the other way"
        );
        assert!(pass(&mut t, 3, false, 300, now));
    }

    #[test]
    fn a_seats_bucket_goes_at_the_sweep_after_its_last_allocation() {
        let now = Instant::now();
        let seat_rate = Rate::kbit_per_sec(8);
        let mut t = three_allocations(
            Caps {
                seat_rate,
                ..caps()
            },
            now,
        );
        assert!(pass(&mut t, 1, true, 1000, now));
        t.remove(udp(1));
        t.sweep(now, |_| false);
        assert!(!pass(&mut t, 2, true, 1000, now), "seat 7 still has one");
        t.remove(udp(2));
        t.sweep(now, |_| false);
        assert!(!t.seat_buckets.contains_key(&SeatId(7)));
        assert!(t.seat_buckets.contains_key(&SeatId(8)));
    }
}
