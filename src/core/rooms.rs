//! Rooms and seats: who is in which room, who may take which seat, and who must hear of it.
//!
//! This module is plain data and functions. It owns no socket and reads no clock: the caller
//! passes `now`, a fresh token and a handle `H` for each socket's outbound queue, and gets back
//! the notices to deliver. That keeps every rule (caps, takeover, host passing, grace, TTL) a fast
//! unit test, and lets the caller send outside the lock.
//!
//! Architecture invariant: all rooms sit behind one lock (the caller's), so a cap check, a seat
//! takeover and its announcement happen atomically; there is no second map to disagree with.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::core::limits::MAX_PEERS_PER_ROOM;
use std::collections::VecDeque;

use crate::core::addr::AddrKey;
use crate::core::ids::{ChatLine, ClientId, Join, Name, Peer, SeatId, Token, Update};
use crate::core::password::PasswordHash;
use crate::core::snapshot::{SavedDenial, SavedKnock, SavedRemoval, SavedRoom, SavedSeat};

/// Bytes of chat text a room keeps for late joiners; the oldest lines go first.
pub const CHAT_HISTORY_BYTES: usize = 16 * 1024;
/// Identities a room remembers as removed by the host; past it, the oldest is forgotten.
pub const MAX_REMOVED: usize = 32;
/// Addresses a room remembers as removed (each with the identities seated from it then); past
/// it, the oldest is forgotten. Small, to stay inside the room's share of the budget: 8 entries
/// of at most 5 identities are 3,264 bytes at worst (`removed_addresses_are_bounded`).
pub const MAX_REMOVED_ADDRESSES: usize = 8;
/// People waiting to be let in at once, per room: as many as there are seats.
pub const MAX_KNOCKS: usize = MAX_PEERS_PER_ROOM;
/// Knocks waiting at once from one address (IPv4, or an IPv6 /64) in one room: a household's
/// two devices, not a script's dozen.
pub const KNOCKS_PER_ADDRESS: usize = 2;
/// Denials a room remembers (each until its retry delay ends); past it, the oldest goes early.
/// As many as knocks may wait, to keep what asking to join can cost a room under 4 KiB
/// (`knocks_denials_and_leavers_are_bounded`).
pub const MAX_DENIED: usize = 6;

/// A room name: 1–64 characters of `a-z 0-9 -`, lower-cased.
pub type RoomName = heapless::String<64>;

/// Checks and lower-cases a room name taken from a URL path.
pub fn parse_room_name(raw: &str) -> Option<RoomName> {
    if raw.is_empty() || raw.len() > 64 {
        return None;
    }
    let mut name = RoomName::new();
    for byte in raw.bytes() {
        let lower = byte.to_ascii_lowercase();
        if !(lower.is_ascii_lowercase() || lower.is_ascii_digit() || lower == b'-') {
            return None;
        }
        name.push(lower as char).ok()?;
    }
    Some(name)
}

/// Identifies one socket, so that a socket that lost its seat cannot act for it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// A socket bound to a seat: its id, the handle its messages are queued on, and the client
/// address removals are keyed on (`None` where per-address rules do not apply: loopback
/// without `--limit-loopback`, as a local proxy's users all share it).
#[derive(Debug, Clone)]
pub struct Conn<H> {
    pub id: ConnId,
    pub handle: H,
    pub addr: Option<AddrKey>,
}

/// An address the host removed someone from, with the identities that were seated in the room
/// from that address at the time: they may come back (a household behind one NAT), a new
/// identity from there may not.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RemovedAddr {
    addr: AddrKey,
    known: Vec<ClientId>,
}

#[derive(Debug)]
struct Seat<H> {
    id: SeatId,
    client: ClientId,
    token: Token,
    /// Boxed: a `Name` holds its full 256-byte capacity, in every seat of every room.
    name: Box<str>,
    audio: bool,
    video: bool,
    screen: bool,
    hand: bool,
    /// Recording the meeting in its browser (`update`), while the room allows it.
    recording: bool,
    host: bool,
    conn: Option<Conn<H>>,
    /// The address it last joined from (kept while away, for a removal).
    addr: Option<AddrKey>,
    /// Set while the socket is lost: the seat is freed at this instant unless resumed.
    away_until: Option<Instant>,
}

impl<H> Seat<H> {
    /// The name as the wire carries it (it came from a `Name`, so it fits).
    fn name(&self) -> Name {
        Name::try_from(&*self.name).unwrap_or_default()
    }

    fn peer(&self) -> Peer {
        Peer {
            id: self.id,
            name: self.name(),
            audio: self.audio,
            video: self.video,
            screen: self.screen,
            host: self.host,
            away: self.away_until.is_some(),
            hand: self.hand,
            recording: self.recording,
        }
    }
}

/// Someone waiting in the lobby of a room that asks to join. Its id is the seat id it gets when
/// admitted, and its token the seat's token, so a knock survives a reconnect or a restart the
/// way a seat does (the same `client` and `token` find it again).
#[derive(Debug)]
struct Knock<H> {
    id: SeatId,
    client: ClientId,
    token: Token,
    name: Name,
    conn: Option<Conn<H>>,
    addr: Option<AddrKey>,
    /// The host let them in: the place is kept for their `join` (which takes the seat).
    admitted: bool,
    /// Set while the socket is lost, and once admitted: the knock goes at this instant unless
    /// its owner comes back (or takes the seat).
    away_until: Option<Instant>,
}

impl<H> Knock<H> {
    fn info(&self) -> KnockInfo {
        KnockInfo {
            id: self.id,
            name: self.name.clone(),
        }
    }
}

/// Someone a host denied, who may not knock again before `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Denial {
    client: ClientId,
    addr: Option<AddrKey>,
    until: Instant,
}

#[derive(Debug)]
struct Room<H> {
    /// In order of arrival, so host passes to `seats[0]`. The capacity is the hard seat cap.
    seats: heapless::Vec<Seat<H>, MAX_PEERS_PER_ROOM>,
    last_activity: Instant,
    password: Option<PasswordHash>,
    locked: bool,
    /// The host turned recording off: no seat may record.
    recording_off: bool,
    /// Identities the host removed; they cannot rejoin while the room lives.
    removed: VecDeque<ClientId>,
    /// Addresses the host removed someone from: only identities seated from there before the
    /// removal may take a new seat from them while the room lives.
    removed_addrs: VecDeque<RemovedAddr>,
    /// The address that made the room, for the per-address room cap (`None`: exempt).
    creator: Option<AddrKey>,
    chat: VecDeque<ChatLine>,
    chat_bytes: usize,
    /// "Ask to join": a new identity waits as a knock until the host admits it.
    ask: bool,
    /// Waiting (and admitted, not yet seated) knocks, oldest first, at most [`MAX_KNOCKS`].
    /// On the heap, not inline like the seats: most rooms never ask to join, and six knocks
    /// inline would be 2.7 KB in every room.
    knocks: Vec<Knock<H>>,
    /// Denied knockers and until when they may not knock again.
    denied: VecDeque<Denial>,
    /// Seats freed by `leave` or a close in the last grace period (identity, token, until):
    /// their tab coming back (a reload) is not asked to knock. Not kept across a restart.
    left: VecDeque<(ClientId, Token, Instant)>,
}

impl<H: Clone> Room<H> {
    /// Whether the host set anything that a stranger re-creating the room would undo.
    fn is_protected(&self) -> bool {
        self.password.is_some()
            || self.locked
            || self.ask
            || self.recording_off
            || !self.removed.is_empty()
    }

    /// Seats taken plus places kept for admitted knocks: what the seat cap counts.
    fn places_taken(&self) -> usize {
        self.seats.len() + self.knocks.iter().filter(|k| k.admitted).count()
    }

    /// The sockets of the host's seat (where knocks are shown).
    fn host_handles(&self) -> Vec<H> {
        self.seats
            .iter()
            .filter(|s| s.host)
            .filter_map(|s| s.conn.as_ref().map(|c| c.handle.clone()))
            .collect()
    }

    /// The knocks a host must see: those still waiting.
    fn waiting(&self) -> Vec<KnockInfo> {
        self.knocks
            .iter()
            .filter(|k| !k.admitted)
            .map(Knock::info)
            .collect()
    }

    /// Whether `client` from `addr` was denied and may not knock again yet.
    fn denied_at(&self, client: &ClientId, addr: Option<AddrKey>, now: Instant) -> bool {
        self.denied
            .iter()
            .any(|d| d.until > now && (&d.client == client || (addr.is_some() && d.addr == addr)))
    }

    /// Lets a waiting knock in: its place is kept, its socket told, the hosts' lists updated.
    fn admit_knock(&mut self, index: usize, deadline: Instant, notices: &mut Vec<Notice<H>>) {
        let knock = &mut self.knocks[index];
        knock.admitted = true;
        knock.away_until = Some(deadline);
        let id = knock.id;
        if let Some(conn) = &knock.conn {
            notices.push(Notice {
                to: vec![conn.handle.clone()],
                event: Event::Admitted,
            });
        }
        notices.push(Notice {
            to: self.host_handles(),
            event: Event::KnockGone(id),
        });
    }

    fn new(now: Instant) -> Room<H> {
        Room {
            seats: heapless::Vec::new(),
            last_activity: now,
            password: None,
            locked: false,
            recording_off: false,
            removed: VecDeque::new(),
            removed_addrs: VecDeque::new(),
            creator: None,
            chat: VecDeque::new(),
            chat_bytes: 0,
            ask: false,
            knocks: Vec::new(),
            denied: VecDeque::new(),
            left: VecDeque::new(),
        }
    }

    fn info(&self) -> RoomInfo {
        RoomInfo {
            locked: self.locked,
            password: self.password.is_some(),
            ask: self.ask,
            recording_allowed: !self.recording_off,
        }
    }

    /// Whether `client` joining from `addr` is barred by a removal: the identity itself, or a
    /// new identity from an address someone was removed from.
    fn barred(&self, client: &ClientId, addr: Option<AddrKey>) -> bool {
        self.removed.contains(client)
            || addr.is_some_and(|addr| {
                self.removed_addrs
                    .iter()
                    .any(|r| r.addr == addr && !r.known.contains(client))
            })
    }

    fn host_seat(&mut self, seat: SeatId, conn: ConnId) -> Result<&mut Seat<H>, HostError> {
        match self.seat_of(seat, conn) {
            Some(s) if s.host => Ok(s),
            _ => Err(HostError::NotHost),
        }
    }

    fn handles_except(&self, except: SeatId) -> Vec<H> {
        self.seats
            .iter()
            .filter(|s| s.id != except)
            .filter_map(|s| s.conn.as_ref().map(|c| c.handle.clone()))
            .collect()
    }

    fn handles(&self) -> Vec<H> {
        self.seats
            .iter()
            .filter_map(|s| s.conn.as_ref().map(|c| c.handle.clone()))
            .collect()
    }

    /// The knock `conn` holds as `id`, if it still does.
    fn knock_of(&self, id: SeatId, conn: ConnId) -> Option<usize> {
        self.knocks
            .iter()
            .position(|k| k.id == id && k.conn.as_ref().is_some_and(|c| c.id == conn))
    }

    fn seat_of(&mut self, seat: SeatId, conn: ConnId) -> Option<&mut Seat<H>> {
        self.seats
            .iter_mut()
            .find(|s| s.id == seat && s.conn.as_ref().is_some_and(|c| c.id == conn))
    }

    /// Removes a seat, announces it, and passes host on if the host left.
    fn remove_seat(&mut self, seat: SeatId, notices: &mut Vec<Notice<H>>) -> bool {
        let Some(index) = self.seats.iter().position(|s| s.id == seat) else {
            return false;
        };
        let gone = self.seats.remove(index);
        notices.push(Notice {
            to: self.handles(),
            event: Event::PeerLeft(seat),
        });
        if gone.host {
            if let Some(next) = self.seats.first_mut() {
                next.host = true;
                let peer = next.peer();
                notices.push(Notice {
                    to: self.handles(),
                    event: Event::PeerUpdated(peer),
                });
                // The new host sees who is waiting, as a host arriving later would.
                let to = self.host_handles();
                for knock in self.waiting() {
                    notices.push(Notice {
                        to: to.clone(),
                        event: Event::Knock(knock),
                    });
                }
            }
        }
        true
    }
}

/// Something the sockets in `to` must be told.
#[derive(Debug)]
pub struct Notice<H> {
    pub to: Vec<H>,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    PeerJoined(Peer),
    PeerLeft(SeatId),
    PeerUpdated(Peer),
    PeerRejoined {
        peer: Peer,
        reset: bool,
    },
    RoomUpdated(RoomInfo),
    Chat(ChatLine),
    /// To the host: someone knocks (or knocks again after a reconnect).
    Knock(KnockInfo),
    /// To the host: a knock was admitted, denied or withdrawn.
    KnockGone(SeatId),
    /// To a knocker: the host let you in; send `join` again to take the seat.
    Admitted,
}

/// What everyone may know of a room's access rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomInfo {
    pub locked: bool,
    pub password: bool,
    pub recording_allowed: bool,
    /// "Ask to join": newcomers knock and wait for the host.
    pub ask: bool,
}

/// Why an `update` was refused (nothing of it changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateError {
    /// `recording: true` while the host does not allow recording.
    RecordingOff,
}

/// A knock as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KnockInfo {
    pub id: SeatId,
    pub name: Name,
}

/// Why a host action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    NotHost,
    /// Admitting would pass the seat cap; the knock keeps waiting.
    NoFreeSeat,
}

/// A join that became a knock: who is waiting, and who must be told.
#[derive(Debug)]
pub struct Knocked<H> {
    pub id: SeatId,
    pub token: Token,
    pub notices: Vec<Notice<H>>,
    /// The socket that held this knock before (a second tab), to be told `replaced`.
    pub replaced: Option<H>,
}

/// A knock the host denied: its socket, to be told and closed.
#[derive(Debug)]
pub struct Denied<H> {
    pub handle: Option<H>,
    pub notices: Vec<Notice<H>>,
}

/// A participant the host removed: their socket, to be told and closed.
#[derive(Debug)]
pub struct Removal<H> {
    pub handle: Option<H>,
    pub notices: Vec<Notice<H>>,
}

/// A join that got a seat.
#[derive(Debug)]
pub struct Admitted<H> {
    pub you: SeatId,
    pub token: Token,
    pub host: bool,
    /// Everyone else in the room.
    pub peers: Vec<Peer>,
    pub notices: Vec<Notice<H>>,
    /// The socket that held this seat before, to be told `replaced` and closed.
    pub replaced: Option<H>,
    /// True when the seat was taken over rather than newly made.
    pub resumed: bool,
    pub room: RoomInfo,
    /// Recent chat, oldest first.
    pub chat: Vec<ChatLine>,
    /// For the host: the knocks waiting now (a host arriving later sees them).
    pub knocks: Vec<KnockInfo>,
}

/// Why a join got no seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    RoomFull,
    ServerBusy,
    /// The address has made as many rooms as it may hold, and none of them can make way.
    TooManyRooms,
    BadPassword,
    Locked,
    Removed,
    /// The room asks to join: the caller makes this join a knock ([`Rooms::knock`]).
    MustKnock,
    /// The host denied this identity or address a moment ago; it may knock again later.
    Denied,
    /// This address already has [`KNOCKS_PER_ADDRESS`] knocks waiting in the room.
    TooManyKnocks,
}

/// The numbers the room rules need.
#[derive(Debug, Clone, Copy)]
pub struct RoomLimits {
    pub peers_per_room: usize,
    pub max_rooms: usize,
    /// Rooms one address may have made that still exist (`rates.ip_rooms`).
    pub rooms_per_address: usize,
    pub ttl: Duration,
    pub grace: Duration,
    /// How long a denied knocker waits before knocking again (`timers.knock_retry_secs`).
    pub knock_retry: Duration,
}

/// Every room of the process.
#[derive(Debug)]
pub struct Rooms<H> {
    // Boxed: a room is 2.8 KB (six seats inline), and a map of them inline would move and
    // over-allocate whole rooms as it grows (a quarter of a KiB per participant, issue 18).
    rooms: HashMap<RoomName, Box<Room<H>>>,
    limits: RoomLimits,
    next_seat: u64,
    seated: usize,
    away: usize,
    /// Knocks in all rooms, so the sweep looks at them only when there are some.
    knocks: usize,
    /// Bumped by every change a restart should keep (seats, host, password, lock, removals,
    /// rooms gone); the store writes when it moved.
    changes: u64,
}

impl<H: Clone> Rooms<H> {
    /// `first_seat` is where seat ids start; the server picks it at random so that ids from
    /// before a restart are not handed out again to someone else.
    pub fn new(limits: RoomLimits, first_seat: u64) -> Rooms<H> {
        Rooms {
            rooms: HashMap::new(),
            limits: RoomLimits {
                peers_per_room: limits.peers_per_room.min(MAX_PEERS_PER_ROOM),
                ..limits
            },
            next_seat: first_seat.max(1),
            seated: 0,
            away: 0,
            knocks: 0,
            changes: 0,
        }
    }

    /// A number that moves whenever something worth keeping across a restart changed.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// What a restart keeps: every room with its password hash, lock, removed identities and
    /// seats (identity, token, name, host), and how long it has been idle.
    pub fn save(&self, now: Instant) -> Vec<SavedRoom> {
        self.rooms
            .iter()
            .map(|(name, room)| SavedRoom {
                name: name.clone(),
                idle_secs: now.saturating_duration_since(room.last_activity).as_secs(),
                password: room.password.as_ref().map(PasswordHash::to_stored),
                locked: room.locked,
                recording_off: room.recording_off,
                removed: room.removed.iter().cloned().collect(),
                removed_addrs: room
                    .removed_addrs
                    .iter()
                    .map(|r| SavedRemoval {
                        addr: r.addr.ip(),
                        known: r.known.clone(),
                    })
                    .collect(),
                creator: room.creator.map(AddrKey::ip),
                ask: room.ask,
                knocks: room
                    .knocks
                    .iter()
                    .map(|k| SavedKnock {
                        id: k.id.0,
                        client: k.client.clone(),
                        token: k.token.to_hex().to_string(),
                        name: k.name.clone(),
                        admitted: k.admitted,
                    })
                    .collect(),
                denied: room
                    .denied
                    .iter()
                    .filter(|d| d.until > now)
                    .map(|d| SavedDenial {
                        client: d.client.clone(),
                        addr: d.addr.map(AddrKey::ip),
                        secs_left: d.until.saturating_duration_since(now).as_secs() + 1,
                    })
                    .collect(),
                seats: room
                    .seats
                    .iter()
                    .map(|seat| SavedSeat {
                        id: seat.id.0,
                        client: seat.client.clone(),
                        token: seat.token.to_hex().to_string(),
                        name: seat.name(),
                        host: seat.host,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Brings back saved rooms after a restart, `extra_idle` being how long the server was
    /// down. Seats come back as away for the grace period, so their owners resume them (host
    /// rights included) with their tokens; empty rooms past the TTL are dropped. Returns how
    /// many rooms and seats came back.
    pub fn restore(
        &mut self,
        saved: Vec<SavedRoom>,
        extra_idle: Duration,
        now: Instant,
    ) -> (usize, usize) {
        let (mut rooms, mut seats) = (0, 0);
        for saved in saved {
            if self.rooms.len() >= self.limits.max_rooms || self.rooms.contains_key(&saved.name) {
                continue;
            }
            let idle = Duration::from_secs(saved.idle_secs) + extra_idle;
            if saved.seats.is_empty() && idle >= self.limits.ttl {
                continue;
            }
            let mut room = Room::new(now.checked_sub(idle).unwrap_or(now));
            room.password = saved
                .password
                .as_deref()
                .and_then(PasswordHash::from_stored);
            if saved.password.is_some() && room.password.is_none() {
                // Never reopen a protected room without its password: lock it instead.
                log::warn!(
                    "room {}: stored password unreadable, room locked",
                    saved.name
                );
                room.locked = true;
            }
            room.locked |= saved.locked;
            room.recording_off = saved.recording_off;
            room.creator = saved.creator.map(AddrKey::of);
            room.removed = saved
                .removed
                .into_iter()
                .rev()
                .take(MAX_REMOVED)
                .rev()
                .collect();
            room.removed_addrs = saved
                .removed_addrs
                .into_iter()
                .rev()
                .take(MAX_REMOVED_ADDRESSES)
                .rev()
                .map(|r| RemovedAddr {
                    addr: AddrKey::of(r.addr),
                    known: r.known.into_iter().take(MAX_PEERS_PER_ROOM).collect(),
                })
                .collect();
            for seat in saved.seats.into_iter().take(self.limits.peers_per_room) {
                let Some(token) = Token::from_hex(&seat.token) else {
                    continue;
                };
                self.next_seat = self.next_seat.max(seat.id + 1);
                let restored = Seat {
                    id: SeatId(seat.id),
                    client: seat.client,
                    token,
                    name: seat.name.as_str().into(),
                    audio: false,
                    video: false,
                    screen: false,
                    hand: false,
                    recording: false,
                    host: seat.host,
                    conn: None,
                    // Not kept: a seat removed before its owner is back bars the identity only.
                    addr: None,
                    away_until: Some(now + self.limits.grace),
                };
                if room.seats.push(restored).is_ok() {
                    self.seated += 1;
                    self.away += 1;
                    seats += 1;
                }
            }
            if !room.seats.is_empty() && !room.seats.iter().any(|s| s.host) {
                room.seats[0].host = true;
            }
            room.ask = saved.ask;
            // Knocks come back like seats: held for the grace period, for their owners to
            // reconnect to with their tokens (an admitted one still takes its seat).
            for knock in saved.knocks.into_iter().take(MAX_KNOCKS) {
                let Some(token) = Token::from_hex(&knock.token) else {
                    continue;
                };
                self.next_seat = self.next_seat.max(knock.id + 1);
                let restored = Knock {
                    id: SeatId(knock.id),
                    client: knock.client,
                    token,
                    name: knock.name,
                    conn: None,
                    addr: None,
                    admitted: knock.admitted,
                    away_until: Some(now + self.limits.grace),
                };
                room.knocks.push(restored);
                self.knocks += 1;
            }
            room.denied = saved
                .denied
                .into_iter()
                .rev()
                .take(MAX_DENIED)
                .rev()
                .map(|d| Denial {
                    client: d.client,
                    addr: d.addr.map(AddrKey::of),
                    until: now + Duration::from_secs(d.secs_left),
                })
                .collect();
            self.rooms.insert(saved.name, Box::new(room));
            rooms += 1;
        }
        (rooms, seats)
    }

    /// Rooms held (occupied or waiting out their TTL).
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Every seat id held now (seated or away), for the TURN relay's check that an
    /// allocation's seat still exists.
    pub fn seat_ids(&self) -> impl Iterator<Item = SeatId> + '_ {
        self.rooms
            .values()
            .flat_map(|room| room.seats.iter().map(|seat| seat.id))
    }

    /// Seats taken, including seats held for a lost socket.
    pub fn seat_count(&self) -> usize {
        self.seated
    }

    /// The room's password hash, for checking a join's password outside the lock (the hash is
    /// slow on purpose).
    pub fn password_of(&self, room_name: &RoomName) -> Option<PasswordHash> {
        self.rooms.get(room_name).and_then(|r| r.password.clone())
    }

    /// Replaces a room's password hash made with an older KDF or cost by `fresh`, made from the
    /// same password just proven against it; a no-op if the host changed the password meanwhile.
    pub fn upgrade_password(
        &mut self,
        room_name: &RoomName,
        old: &PasswordHash,
        fresh: PasswordHash,
    ) {
        if let Some(room) = self.rooms.get_mut(room_name) {
            if room.password.as_ref() == Some(old) {
                room.password = Some(fresh);
                self.changes += 1;
            }
        }
    }

    /// Seats a join into `room`: takes over the seat of the same identity, or fills a new one if
    /// the room's rules allow. `proven` is the password hash the join's password was verified
    /// against (see [`Rooms::password_of`]). `heap_has_room` is the budget's word on whether a
    /// new room may be made.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &mut self,
        room_name: &RoomName,
        join: &Join,
        conn: Conn<H>,
        fresh_token: Token,
        proven: Option<&PasswordHash>,
        now: Instant,
        heap_has_room: bool,
    ) -> Result<Admitted<H>, Refusal> {
        if !self.rooms.contains_key(room_name) {
            if !heap_has_room {
                return Err(Refusal::ServerBusy);
            }
            if let Some(addr) = conn.addr {
                self.make_way_for(addr)?;
            }
            if self.rooms.len() >= self.limits.max_rooms && !self.evict_idle_room() {
                return Err(Refusal::ServerBusy);
            }
            let mut fresh = Room::new(now);
            fresh.creator = conn.addr;
            self.rooms.insert(room_name.clone(), Box::new(fresh));
        }
        let room = self
            .rooms
            .get_mut(room_name)
            .expect("inserted above if missing");
        room.last_activity = now;
        self.changes += 1;

        // One identity, one seat: the same client with its token takes its seat back.
        let claimed = join.token.as_ref().and_then(|token| {
            room.seats
                .iter()
                .position(|s| s.client == join.client && s.token.matches(token))
        });
        if let Some(index) = claimed {
            let seat = &mut room.seats[index];
            seat.addr = conn.addr.or(seat.addr);
            let replaced = seat.conn.replace(conn).map(|old| old.handle);
            if seat.away_until.take().is_some() {
                self.away -= 1;
            }
            seat.name = join.name.as_str().into();
            seat.audio = join.audio;
            seat.video = join.video;
            seat.screen = false;
            seat.hand = false;
            // A page that kept its connections (resume) may still be recording; it says so again
            // after the resume, and learns then if the host turned recording off meanwhile.
            // Any other page has lost its recorder with its state.
            seat.recording &= join.resume;
            let (you, token, host, peer) = (seat.id, seat.token, seat.host, seat.peer());
            let notices = vec![Notice {
                to: room.handles_except(you),
                event: Event::PeerRejoined {
                    peer,
                    reset: !join.resume,
                },
            }];
            return Ok(Admitted {
                you,
                token,
                host,
                peers: room
                    .seats
                    .iter()
                    .filter(|s| s.id != you)
                    .map(Seat::peer)
                    .collect(),
                notices,
                replaced,
                resumed: true,
                room: room.info(),
                chat: room.chat.iter().cloned().collect(),
                knocks: if host { room.waiting() } else { Vec::new() },
            });
        }

        // An admitted knock takes the place kept for it, with the knock's id and token. A
        // waiting one (a reconnect, a restart) is the knock path's.
        let knock = join.token.as_ref().and_then(|token| {
            room.knocks
                .iter()
                .position(|k| k.client == join.client && k.token.matches(token))
        });
        let mut seat_id = None;
        if let Some(index) = knock {
            if !room.knocks[index].admitted {
                return Err(Refusal::MustKnock);
            }
            let knock = room.knocks.remove(index);
            self.knocks -= 1;
            seat_id = Some((knock.id, knock.token));
        } else {
            if room.barred(&join.client, conn.addr) {
                return Err(Refusal::Removed);
            }
            if room.locked {
                return Err(Refusal::Locked);
            }
            if let Some(hash) = &room.password {
                if proven != Some(hash) {
                    return Err(Refusal::BadPassword);
                }
            }
            if room.places_taken() >= self.limits.peers_per_room {
                return Err(Refusal::RoomFull);
            }
            // Nobody to ask in an empty room: the first to come is host, and is shown the
            // knocks left waiting. Nor is a tab that left a moment ago (a reload) asked again.
            let just_left = join.token.as_ref().is_some_and(|token| {
                room.left
                    .iter()
                    .any(|(c, t, until)| *until > now && *c == join.client && t.matches(token))
            });
            if room.ask && !room.seats.is_empty() && !just_left {
                if room.denied_at(&join.client, conn.addr, now) {
                    return Err(Refusal::Denied);
                }
                return Err(Refusal::MustKnock);
            }
        }
        if room.seats.len() >= self.limits.peers_per_room {
            return Err(Refusal::RoomFull);
        }
        let (you, fresh_token) = match seat_id {
            Some(kept) => kept,
            None => {
                self.next_seat += 1;
                (SeatId(self.next_seat - 1), fresh_token)
            }
        };
        let seat = Seat {
            id: you,
            client: join.client.clone(),
            token: fresh_token,
            name: join.name.as_str().into(),
            audio: join.audio,
            video: join.video,
            screen: false,
            hand: false,
            recording: false,
            host: room.seats.is_empty(),
            addr: conn.addr,
            conn: Some(conn),
            away_until: None,
        };
        let peer = seat.peer();
        let host = seat.host;
        let peers = room.seats.iter().map(Seat::peer).collect();
        let notices = vec![Notice {
            to: room.handles(),
            event: Event::PeerJoined(peer),
        }];
        if room.seats.push(seat).is_err() {
            // peers_per_room is clamped to the vector's capacity in `new`.
            unreachable!("seat cap checked above");
        }
        self.seated += 1;
        Ok(Admitted {
            you,
            token: fresh_token,
            host,
            peers,
            notices,
            replaced: None,
            resumed: false,
            room: room.info(),
            chat: room.chat.iter().cloned().collect(),
            knocks: if host { room.waiting() } else { Vec::new() },
        })
    }

    /// A join that [`Rooms::join`] refused with [`Refusal::MustKnock`] waits as a knock: a new
    /// one (the host's sockets hear of it), or the same `client` and `token` coming back to its
    /// knock after a reconnect or a restart. Call it under the same lock as the `join`.
    pub fn knock(
        &mut self,
        room_name: &RoomName,
        join: &Join,
        conn: Conn<H>,
        fresh_token: Token,
        now: Instant,
    ) -> Result<Knocked<H>, Refusal> {
        let room = self.rooms.get_mut(room_name).ok_or(Refusal::ServerBusy)?;
        room.last_activity = now;
        let mine = join.token.as_ref().and_then(|token| {
            room.knocks
                .iter()
                .position(|k| k.client == join.client && k.token.matches(token))
        });
        let mut replaced = None;
        let index = match mine {
            Some(index) => {
                let knock = &mut room.knocks[index];
                knock.addr = conn.addr.or(knock.addr);
                let again = conn.id;
                // The same socket knocking twice replaces nobody.
                replaced = knock
                    .conn
                    .replace(conn)
                    .filter(|old| old.id != again)
                    .map(|old| old.handle);
                if !knock.admitted {
                    knock.away_until = None;
                }
                knock.name = join.name.clone();
                index
            }
            None => {
                // The same tab knocking without its token replaces its old knock.
                if let Some(old) = room.knocks.iter().position(|k| k.client == join.client) {
                    let old = room.knocks.remove(old);
                    self.knocks -= 1;
                    replaced = old.conn.map(|c| c.handle);
                }
                if let Some(addr) = conn.addr {
                    let from_here = room.knocks.iter().filter(|k| k.addr == Some(addr)).count();
                    if from_here >= KNOCKS_PER_ADDRESS {
                        return Err(Refusal::TooManyKnocks);
                    }
                }
                let knock = Knock {
                    id: SeatId(self.next_seat),
                    client: join.client.clone(),
                    token: fresh_token,
                    name: join.name.clone(),
                    addr: conn.addr,
                    conn: Some(conn),
                    admitted: false,
                    away_until: None,
                };
                if room.knocks.len() >= MAX_KNOCKS {
                    return Err(Refusal::RoomFull);
                }
                room.knocks.push(knock);
                self.next_seat += 1;
                self.knocks += 1;
                room.knocks.len() - 1
            }
        };
        self.changes += 1;
        let knock = &room.knocks[index];
        let (id, token) = (knock.id, knock.token);
        let mut notices = Vec::new();
        if knock.admitted {
            // Admitted while away: tell them at once, they take the seat with `join`.
            if let Some(conn) = &knock.conn {
                notices.push(Notice {
                    to: vec![conn.handle.clone()],
                    event: Event::Admitted,
                });
            }
        } else {
            notices.push(Notice {
                to: room.host_handles(),
                event: Event::Knock(knock.info()),
            });
        }
        Ok(Knocked {
            id,
            token,
            notices,
            replaced,
        })
    }

    /// Host only: lets a waiting knock in. Its place counts against the seat cap from now;
    /// it takes the seat with its `join` within the grace period, or the place is freed.
    pub fn admit(
        &mut self,
        room_name: &RoomName,
        seat_id: SeatId,
        conn: ConnId,
        knock: SeatId,
        now: Instant,
    ) -> Result<Vec<Notice<H>>, HostError> {
        let cap = self.limits.peers_per_room;
        let deadline = now + self.limits.grace;
        let room = self.rooms.get_mut(room_name).ok_or(HostError::NotHost)?;
        room.host_seat(seat_id, conn)?;
        let mut notices = Vec::new();
        let Some(index) = room
            .knocks
            .iter()
            .position(|k| k.id == knock && !k.admitted)
        else {
            return Ok(notices);
        };
        if room.places_taken() >= cap {
            return Err(HostError::NoFreeSeat);
        }
        room.last_activity = now;
        self.changes += 1;
        room.admit_knock(index, deadline, &mut notices);
        Ok(notices)
    }

    /// Host only: turns a waiting knock away. That identity, and new ones from its address,
    /// may knock again only after `knock_retry`.
    pub fn deny(
        &mut self,
        room_name: &RoomName,
        seat_id: SeatId,
        conn: ConnId,
        knock: SeatId,
        now: Instant,
    ) -> Result<Denied<H>, HostError> {
        let retry = self.limits.knock_retry;
        let room = self.rooms.get_mut(room_name).ok_or(HostError::NotHost)?;
        room.host_seat(seat_id, conn)?;
        let Some(index) = room
            .knocks
            .iter()
            .position(|k| k.id == knock && !k.admitted)
        else {
            return Ok(Denied {
                handle: None,
                notices: Vec::new(),
            });
        };
        let gone = room.knocks.remove(index);
        self.knocks -= 1;
        room.denied.retain(|d| d.until > now);
        if room.denied.len() >= MAX_DENIED {
            room.denied.pop_front();
        }
        room.denied.push_back(Denial {
            client: gone.client,
            addr: gone.addr,
            until: now + retry,
        });
        room.last_activity = now;
        self.changes += 1;
        Ok(Denied {
            handle: gone.conn.map(|c| c.handle),
            notices: vec![Notice {
                to: room.host_handles(),
                event: Event::KnockGone(knock),
            }],
        })
    }

    /// Host only: turns "Ask to join" on or off. Off lets in everyone waiting, as far as the
    /// seats go (the rest keep waiting until a seat frees or the host decides).
    pub fn set_ask(
        &mut self,
        room_name: &RoomName,
        seat_id: SeatId,
        conn: ConnId,
        ask: bool,
        now: Instant,
    ) -> Result<Vec<Notice<H>>, HostError> {
        let cap = self.limits.peers_per_room;
        let deadline = now + self.limits.grace;
        let mut notices =
            self.host_setting(room_name, seat_id, conn, now, |room| room.ask = ask)?;
        if !ask {
            let room = self
                .rooms
                .get_mut(room_name)
                .expect("host_setting found it");
            while room.places_taken() < cap {
                let Some(index) = room.knocks.iter().position(|k| !k.admitted) else {
                    break;
                };
                room.admit_knock(index, deadline, &mut notices);
            }
        }
        Ok(notices)
    }

    /// Lets `addr` make one more room: under its cap, or by dropping the least recently active
    /// of its own rooms that nobody sits in and nothing protects. One address cannot pin the
    /// room arena (without this cap 200 addresses held all 2,048 rooms in 7 s, issue 13.5; a
    /// family needs one or two); a protected room it made still counts until its TTL.
    fn make_way_for(&mut self, addr: AddrKey) -> Result<(), Refusal> {
        let mine = || {
            self.rooms
                .iter()
                .filter(move |(_, r)| r.creator == Some(addr))
        };
        if mine().count() < self.limits.rooms_per_address {
            return Ok(());
        }
        let spare = mine()
            .filter(|(_, r)| r.seats.is_empty() && !r.is_protected())
            .min_by_key(|(_, r)| r.last_activity)
            .map(|(name, _)| name.clone());
        match spare {
            Some(name) => {
                self.changes += 1;
                self.rooms.remove(&name);
                Ok(())
            }
            None => Err(Refusal::TooManyRooms),
        }
    }

    /// Drops the least recently active room that nobody sits in and nothing protects, to make
    /// place for a new one. A room with a password, a lock or removals is never evicted before
    /// its TTL: otherwise anyone could push a family's overnight room out and re-create it as
    /// host with no password (issue 13.3).
    fn evict_idle_room(&mut self) -> bool {
        let idle = self
            .rooms
            .iter()
            .filter(|(_, room)| room.seats.is_empty() && !room.is_protected())
            .min_by_key(|(_, room)| room.last_activity)
            .map(|(name, _)| name.clone());
        match idle {
            Some(name) => {
                self.changes += 1;
                self.rooms.remove(&name).is_some()
            }
            None => false,
        }
    }

    /// `leave`, or a close frame: the seat is freed at once. A socket that no longer holds the
    /// seat (it was replaced) frees nothing.
    pub fn leave(
        &mut self,
        room_name: &RoomName,
        seat: SeatId,
        conn: ConnId,
        now: Instant,
    ) -> Vec<Notice<H>> {
        let mut notices = Vec::new();
        let Some(room) = self.rooms.get_mut(room_name) else {
            return notices;
        };
        if let Some(index) = room.knock_of(seat, conn) {
            // A knocker who gave up: off the host's list.
            room.knocks.remove(index);
            self.knocks -= 1;
            self.changes += 1;
            notices.push(Notice {
                to: room.host_handles(),
                event: Event::KnockGone(seat),
            });
            return notices;
        }
        let Some(gone) = room.seat_of(seat, conn) else {
            return notices;
        };
        // A reload closes the socket and frees the seat; the same tab joining again within the
        // grace period was in the room a moment ago and is not asked to knock.
        let back = (gone.client.clone(), gone.token, now + self.limits.grace);
        room.left
            .retain(|(client, _, until)| *until > now && *client != back.0);
        if room.left.len() >= MAX_PEERS_PER_ROOM {
            room.left.pop_front();
        }
        room.left.push_back(back);
        room.last_activity = now;
        self.changes += 1;
        if room.remove_seat(seat, &mut notices) {
            self.seated -= 1;
        }
        notices
    }

    /// The socket was lost without a goodbye: hold the seat for its owner until the grace period
    /// ends, and show it as away meanwhile.
    pub fn lost(
        &mut self,
        room_name: &RoomName,
        seat_id: SeatId,
        conn: ConnId,
        now: Instant,
    ) -> Vec<Notice<H>> {
        let grace = self.limits.grace;
        let Some(room) = self.rooms.get_mut(room_name) else {
            return Vec::new();
        };
        if let Some(index) = room.knock_of(seat_id, conn) {
            // Held like a seat, for a reconnect; the host's list keeps it.
            let knock = &mut room.knocks[index];
            knock.conn = None;
            let until = now + grace;
            knock.away_until = Some(knock.away_until.map_or(until, |t| t.min(until)));
            return Vec::new();
        }
        let Some(seat) = room.seat_of(seat_id, conn) else {
            return Vec::new();
        };
        seat.conn = None;
        seat.away_until = Some(now + grace);
        let peer = seat.peer();
        self.away += 1;
        room.last_activity = now;
        vec![Notice {
            to: room.handles_except(seat_id),
            event: Event::PeerUpdated(peer),
        }]
    }

    /// `update`: the seat's media state, hand or recording changed.
    ///
    /// `recording: true` is refused while the host does not allow recording. An update that
    /// names `recording` goes to the sender too: a recorder starts only once the server has told
    /// everyone (its own copy is queued with theirs, under the same lock).
    pub fn update(
        &mut self,
        room_name: &RoomName,
        seat_id: SeatId,
        conn: ConnId,
        update: Update,
        now: Instant,
    ) -> Result<Vec<Notice<H>>, UpdateError> {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return Ok(Vec::new());
        };
        let recording_off = room.recording_off;
        let Some(seat) = room.seat_of(seat_id, conn) else {
            return Ok(Vec::new());
        };
        if update.recording == Some(true) && recording_off {
            return Err(UpdateError::RecordingOff);
        }
        seat.audio = update.audio.unwrap_or(seat.audio);
        seat.video = update.video.unwrap_or(seat.video);
        seat.screen = update.screen.unwrap_or(seat.screen);
        seat.hand = update.hand.unwrap_or(seat.hand);
        seat.recording = update.recording.unwrap_or(seat.recording);
        let peer = seat.peer();
        room.last_activity = now;
        let to = if update.recording.is_some() {
            room.handles()
        } else {
            room.handles_except(seat_id)
        };
        Ok(vec![Notice {
            to,
            event: Event::PeerUpdated(peer),
        }])
    }

    /// A chat message from a seat, to everyone in the room (the sender too, as confirmation),
    /// kept for late joiners within [`CHAT_HISTORY_BYTES`].
    pub fn chat(
        &mut self,
        room_name: &RoomName,
        seat_id: SeatId,
        conn: ConnId,
        text: &str,
        ts: u64,
        now: Instant,
    ) -> Vec<Notice<H>> {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return Vec::new();
        };
        let Some(seat) = room.seat_of(seat_id, conn) else {
            return Vec::new();
        };
        let line = ChatLine {
            from: seat_id,
            name: seat.name(),
            text: text.to_string(),
            ts,
        };
        room.last_activity = now;
        room.chat_bytes += line.text.len();
        room.chat.push_back(line.clone());
        while room.chat_bytes > CHAT_HISTORY_BYTES {
            let Some(old) = room.chat.pop_front() else {
                break;
            };
            room.chat_bytes -= old.text.len();
        }
        vec![Notice {
            to: room.handles(),
            event: Event::Chat(line),
        }]
    }

    /// Host only: sets (`Some`) or clears (`None`) the room password.
    pub fn set_password(
        &mut self,
        room_name: &RoomName,
        seat_id: SeatId,
        conn: ConnId,
        password: Option<PasswordHash>,
        now: Instant,
    ) -> Result<Vec<Notice<H>>, HostError> {
        self.host_setting(room_name, seat_id, conn, now, |room| {
            room.password = password
        })
    }

    /// Host only: locks or unlocks the room to new people (seats already taken can resume).
    pub fn set_locked(
        &mut self,
        room_name: &RoomName,
        seat_id: SeatId,
        conn: ConnId,
        locked: bool,
        now: Instant,
    ) -> Result<Vec<Notice<H>>, HostError> {
        self.host_setting(room_name, seat_id, conn, now, |room| room.locked = locked)
    }

    /// Host only: allows or forbids recording. Forbidding it also ends every recording under
    /// way: each recorder's seat is updated (to everyone, the recorder too, whose page stops),
    /// then everyone gets `room-updated`.
    pub fn set_recording_allowed(
        &mut self,
        room_name: &RoomName,
        seat_id: SeatId,
        conn: ConnId,
        allowed: bool,
        now: Instant,
    ) -> Result<Vec<Notice<H>>, HostError> {
        let room = self.rooms.get_mut(room_name).ok_or(HostError::NotHost)?;
        room.host_seat(seat_id, conn)?;
        room.recording_off = !allowed;
        room.last_activity = now;
        self.changes += 1;
        let mut notices = Vec::new();
        if !allowed {
            let stopped: Vec<Peer> = room
                .seats
                .iter_mut()
                .filter(|s| s.recording)
                .map(|s| {
                    s.recording = false;
                    s.peer()
                })
                .collect();
            for peer in stopped {
                notices.push(Notice {
                    to: room.handles(),
                    event: Event::PeerUpdated(peer),
                });
            }
        }
        notices.push(Notice {
            to: room.handles(),
            event: Event::RoomUpdated(room.info()),
        });
        Ok(notices)
    }

    /// Changes a room setting if the seat is the host's, and tells everyone (`room-updated`).
    fn host_setting(
        &mut self,
        room_name: &RoomName,
        seat_id: SeatId,
        conn: ConnId,
        now: Instant,
        change: impl FnOnce(&mut Room<H>),
    ) -> Result<Vec<Notice<H>>, HostError> {
        let room = self.rooms.get_mut(room_name).ok_or(HostError::NotHost)?;
        room.host_seat(seat_id, conn)?;
        change(room);
        room.last_activity = now;
        self.changes += 1;
        Ok(vec![Notice {
            to: room.handles(),
            event: Event::RoomUpdated(room.info()),
        }])
    }

    /// Host only: removes a participant, who cannot rejoin with the same identity while the
    /// room lives.
    pub fn remove(
        &mut self,
        room_name: &RoomName,
        seat_id: SeatId,
        conn: ConnId,
        target: SeatId,
        now: Instant,
    ) -> Result<Removal<H>, HostError> {
        let room = self.rooms.get_mut(room_name).ok_or(HostError::NotHost)?;
        room.host_seat(seat_id, conn)?;
        let mut notices = Vec::new();
        let Some(victim) = room
            .seats
            .iter()
            .find(|s| s.id == target && target != seat_id)
        else {
            return Ok(Removal {
                handle: None,
                notices,
            });
        };
        let handle = victim.conn.as_ref().map(|c| c.handle.clone());
        let was_away = victim.away_until.is_some();
        if room.removed.len() >= MAX_REMOVED {
            room.removed.pop_front();
        }
        room.removed.push_back(victim.client.clone());
        if let Some(addr) = victim.addr {
            // Those seated from the same address now (a household, an office) stay welcome.
            let known: Vec<ClientId> = room
                .seats
                .iter()
                .filter(|s| s.id != target && s.addr == Some(addr))
                .map(|s| s.client.clone())
                .collect();
            match room.removed_addrs.iter_mut().find(|r| r.addr == addr) {
                // A second removal from one address: only those known both times stay welcome.
                Some(entry) => entry.known.retain(|c| known.contains(c)),
                None => {
                    if room.removed_addrs.len() >= MAX_REMOVED_ADDRESSES {
                        room.removed_addrs.pop_front();
                    }
                    room.removed_addrs.push_back(RemovedAddr { addr, known });
                }
            }
        }
        room.last_activity = now;
        self.changes += 1;
        if room.remove_seat(target, &mut notices) {
            self.seated -= 1;
            if was_away {
                self.away -= 1;
            }
        }
        // Someone removed may come back from another network or device, where neither their
        // identity nor their address is known: from now on newcomers knock (the host can turn
        // it off again in Room settings).
        if !room.ask {
            room.ask = true;
            notices.push(Notice {
                to: room.handles(),
                event: Event::RoomUpdated(room.info()),
            });
        }
        Ok(Removal { handle, notices })
    }

    /// Where a `room-message` from `from` goes: every connected seat of its room, the sender's
    /// too, while the sender's socket still holds its seat (a knock has none).
    pub fn room_handles(
        &mut self,
        room_name: &RoomName,
        from: SeatId,
        conn: ConnId,
    ) -> Option<Vec<H>> {
        let room = self.rooms.get_mut(room_name)?;
        room.seat_of(from, conn)?;
        Some(room.handles())
    }

    /// Where a `signal` from `from` to `to` goes: only to a connected seat of the sender's own
    /// room, and only while the sender's socket still holds its seat.
    pub fn route(
        &mut self,
        room_name: &RoomName,
        from: SeatId,
        conn: ConnId,
        to: SeatId,
        now: Instant,
    ) -> Option<H> {
        let room = self.rooms.get_mut(room_name)?;
        room.seat_of(from, conn)?;
        room.last_activity = now;
        room.seats
            .iter()
            .find(|s| s.id == to)
            .and_then(|s| s.conn.as_ref())
            .map(|c| c.handle.clone())
    }

    /// Frees seats whose grace ran out (rooms themselves go only in [`Rooms::sweep_expired`]).
    /// Cheap when nothing is due: away seats are counted, so with none it scans nothing.
    pub fn sweep_away(&mut self, now: Instant) -> Vec<Notice<H>> {
        let mut notices = Vec::new();
        if self.away == 0 && self.knocks == 0 {
            return notices;
        }
        for room in self.rooms.values_mut() {
            let before = room.knocks.len();
            let mut gone = Vec::new();
            room.knocks.retain(|k| {
                let due = k.away_until.is_some_and(|t| t <= now);
                if due && !k.admitted {
                    gone.push(k.id);
                }
                !due
            });
            if room.knocks.len() != before {
                self.knocks -= before - room.knocks.len();
                self.changes += 1;
                let to = room.host_handles();
                for id in gone {
                    notices.push(Notice {
                        to: to.clone(),
                        event: Event::KnockGone(id),
                    });
                }
            }
            let due: Vec<SeatId> = room
                .seats
                .iter()
                .filter(|s| s.away_until.is_some_and(|t| t <= now))
                .map(|s| s.id)
                .collect();
            for seat in due {
                if room.remove_seat(seat, &mut notices) {
                    self.seated -= 1;
                    self.away -= 1;
                    self.changes += 1;
                }
            }
        }
        notices
    }

    /// Removes rooms with nobody seated whose last activity is older than the TTL. Returns how
    /// many went.
    pub fn sweep_expired(&mut self, now: Instant) -> usize {
        let ttl = self.limits.ttl;
        let before = self.rooms.len();
        self.rooms.retain(|_, room| {
            !room.seats.is_empty() || now.saturating_duration_since(room.last_activity) < ttl
        });
        let gone = before - self.rooms.len();
        if gone > 0 {
            self.changes += 1;
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One join as a test spells it: the request, the socket, the fresh token and the time;
    /// a proven password and a full heap only where a test says so. `Rooms::join` is called in
    /// this one place, so a change of its signature is a change here.
    struct Ask<'a> {
        join: Join,
        conn: Conn<H>,
        fresh: Token,
        proven: Option<&'a PasswordHash>,
        now: Instant,
        heap: bool,
    }

    fn ask<'a>(join: Join, conn: Conn<H>, fresh: Token, now: Instant) -> Ask<'a> {
        Ask {
            join,
            conn,
            fresh,
            proven: None,
            now,
            heap: true,
        }
    }

    impl<'a> Ask<'a> {
        fn proven(mut self, hash: &'a PasswordHash) -> Ask<'a> {
            self.proven = Some(hash);
            self
        }

        fn no_heap(mut self) -> Ask<'a> {
            self.heap = false;
            self
        }
    }

    impl Rooms<H> {
        fn ask(&mut self, room: &RoomName, a: Ask<'_>) -> Result<Admitted<H>, Refusal> {
            self.join(room, &a.join, a.conn, a.fresh, a.proven, a.now, a.heap)
        }
    }

    /// A socket in tests: just its number.
    type H = u32;

    fn limits() -> RoomLimits {
        RoomLimits {
            peers_per_room: 6,
            max_rooms: 3,
            rooms_per_address: 2,
            ttl: Duration::from_secs(6 * 3600),
            grace: Duration::from_secs(30),
            knock_retry: Duration::from_secs(60),
        }
    }

    fn join_req(name: &str, client: &str, token: Option<Token>, resume: bool) -> Join {
        Join {
            name: Name::try_from(name).unwrap(),
            client: ClientId::try_from(client).unwrap(),
            token,
            password: None,
            audio: true,
            video: true,
            resume,
        }
    }

    fn room(name: &str) -> RoomName {
        parse_room_name(name).unwrap()
    }

    fn conn(n: u32) -> Conn<H> {
        Conn {
            id: ConnId(u64::from(n)),
            handle: n,
            addr: None,
        }
    }

    fn conn_from(n: u32, ip: &str) -> Conn<H> {
        Conn {
            addr: Some(AddrKey::of(ip.parse().unwrap())),
            ..conn(n)
        }
    }

    fn token(n: u8) -> Token {
        Token([n; 16])
    }

    #[test]
    fn a_restart_keeps_rooms_seats_host_password_lock_and_removals() {
        let t0 = Instant::now();
        let mut before: Rooms<H> = Rooms::new(limits(), 1000);
        let r = room("family");
        let host = join_n(&mut before, &r, 1, t0);
        let guest = join_n(&mut before, &r, 2, t0);
        let third = join_n(&mut before, &r, 3, t0);
        let hash = PasswordHash::new("pw");
        before
            .set_password(&r, host.you, ConnId(1), Some(hash.clone()), t0)
            .unwrap();
        before
            .remove(&r, host.you, ConnId(1), third.you, t0)
            .unwrap();
        // The removal turned "Ask to join" on; this test is about the rules under it.
        before.set_ask(&r, host.you, ConnId(1), false, t0).unwrap();
        let empty = room("old");
        let _ = join_n(&mut before, &empty, 4, t0);
        let _ = before.leave(&empty, SeatId(1003), ConnId(4), t0);
        let changes = before.changes();
        assert!(changes > 0);

        // Saved as JSON, as the store does, and brought back 10 s later in a new process whose
        // seat ids start lower than the old ones.
        let saved = before.save(t0 + Duration::from_secs(20));
        let json = serde_json::to_string(&saved).unwrap();
        let saved: Vec<SavedRoom> = serde_json::from_str(&json).unwrap();
        let t1 = t0 + Duration::from_secs(100);
        let mut after: Rooms<H> = Rooms::new(limits(), 5);
        assert_eq!(
            after.restore(saved.clone(), Duration::from_secs(10), t1),
            (2, 2)
        );
        assert_eq!(after.seat_count(), 2);

        // The host resumes with its token: same seat, still host.
        let back = after
            .ask(
                &r,
                ask(
                    join_req("Ada", "client0001", Some(host.token), true),
                    conn(11),
                    token(99),
                    t1,
                ),
            )
            .unwrap();
        assert_eq!((back.you, back.host, back.resumed), (host.you, true, true));
        assert_eq!(back.peers.len(), 1, "the guest's seat waits, shown as away");
        assert!(back.peers[0].away);
        // A newcomer without the password is refused; the removed identity stays out.
        let refused = after.ask(
            &r,
            ask(
                join_req("Eve", "client0077", None, false),
                conn(12),
                token(12),
                t1,
            ),
        );
        assert_eq!(refused.err(), Some(Refusal::BadPassword));
        let refused = after.ask(
            &r,
            ask(
                join_req("Cy", "client0003", None, false),
                conn(13),
                token(13),
                t1,
            )
            .proven(&hash),
        );
        assert_eq!(refused.err(), Some(Refusal::Removed));
        // New seats never reuse a restored id.
        let newcomer = after
            .ask(
                &r,
                ask(
                    join_req("Bo", "client0088", None, false),
                    conn(14),
                    token(14),
                    t1,
                )
                .proven(&hash),
            )
            .unwrap();
        assert!(newcomer.you.0 > guest.you.0.max(host.you.0));
        // A guest who never comes back is freed after the grace period.
        let notices = after.sweep_away(t1 + Duration::from_secs(31));
        assert_eq!(notices.len(), 1);
        assert_eq!(after.seat_count(), 2);

        // An empty room past its TTL is not brought back.
        let mut late: Rooms<H> = Rooms::new(limits(), 5);
        assert_eq!(
            late.restore(saved, Duration::from_secs(7 * 3600), t1),
            (1, 2)
        );
    }

    #[test]
    fn a_removal_bars_the_identity_and_new_identities_from_its_address_not_the_household() {
        let t0 = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("family");
        let join = |rooms: &mut Rooms<H>, client: &str, n: u32, ip: &str| {
            rooms.ask(
                &r,
                ask(
                    join_req("p", client, None, false),
                    conn_from(n, ip),
                    token(n as u8),
                    t0,
                ),
            )
        };
        let host = join(&mut rooms, "host-0001", 1, "203.0.113.9").unwrap();
        let troll = join(&mut rooms, "troll-001", 2, "198.51.100.7").unwrap();
        let house = join(&mut rooms, "house-001", 3, "198.51.100.7").unwrap();
        let v6 = join(&mut rooms, "troll-v6-1", 4, "2001:db8:1:2::5").unwrap();
        for victim in [troll.you, v6.you] {
            rooms.remove(&r, host.you, ConnId(1), victim, t0).unwrap();
        }
        // The removals turned "Ask to join" on; this test is about the rules under it.
        rooms.set_ask(&r, host.you, ConnId(1), false, t0).unwrap();
        // The troll from a private window (a new identity), from its address or its /64.
        for (client, n, ip) in [
            ("troll-002", 5, "198.51.100.7"),
            ("troll-001", 6, "192.0.2.44"),
            ("troll-v6-2", 7, "2001:db8:1:2::99"),
        ] {
            assert_eq!(
                join(&mut rooms, client, n, ip).unwrap_err(),
                Refusal::Removed,
                "{client}"
            );
        }
        // The housemate seated before the removal comes back after leaving; others are welcome.
        rooms.leave(&r, house.you, ConnId(3), t0);
        assert!(join(&mut rooms, "house-001", 8, "198.51.100.7").is_ok());
        assert!(join(&mut rooms, "stranger1", 9, "192.0.2.1").is_ok());
        assert!(join(&mut rooms, "neighbour", 10, "2001:db8:1:3::1").is_ok());
        // Without an address (loopback without --limit-loopback) only the identity is barred.
        let keyless = rooms.ask(
            &r,
            ask(
                join_req("p", "troll-003", None, false),
                conn(11),
                token(11),
                t0,
            ),
        );
        assert!(keyless.is_ok());

        // A restart keeps the rule.
        let saved = rooms.save(t0);
        let mut after: Rooms<H> = Rooms::new(limits(), 1);
        after.restore(saved, Duration::ZERO, t0);
        let again = after.ask(
            &r,
            ask(
                join_req("p", "troll-004", None, false),
                conn_from(12, "198.51.100.7"),
                token(12),
                t0,
            ),
        );
        assert_eq!(again.unwrap_err(), Refusal::Removed);
    }

    #[test]
    fn removed_addresses_are_bounded() {
        let t0 = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("big");
        let host = rooms
            .ask(
                &r,
                ask(
                    join_req("p", "host-0001", None, false),
                    conn(1),
                    token(1),
                    t0,
                ),
            )
            .unwrap();
        for n in 0..(MAX_REMOVED_ADDRESSES as u32 + 3) {
            let victim = rooms
                .ask(
                    &r,
                    ask(
                        join_req("p", &format!("troll{n:04}"), None, false),
                        conn_from(n + 2, &format!("198.51.100.{n}")),
                        token(2),
                        t0,
                    ),
                )
                .unwrap();
            rooms
                .remove(&r, host.you, ConnId(1), victim.you, t0)
                .unwrap();
            rooms.set_ask(&r, host.you, ConnId(1), false, t0).unwrap();
        }
        assert_eq!(rooms.save(t0)[0].removed_addrs.len(), MAX_REMOVED_ADDRESSES);
        // Their worst case, inside the room's budget share (docs/SECURITY.md quotes it).
        let worst = MAX_REMOVED_ADDRESSES
            * (std::mem::size_of::<RemovedAddr>()
                + (MAX_PEERS_PER_ROOM - 1) * std::mem::size_of::<ClientId>());
        println!("removed addresses, worst case: {worst} bytes");
        assert!(worst <= 4 * 1024, "{worst}");
    }

    fn join_n(rooms: &mut Rooms<H>, r: &RoomName, n: u32, now: Instant) -> Admitted<H> {
        rooms
            .ask(
                r,
                ask(
                    join_req("p", &format!("client{n:04}"), None, false),
                    conn(n),
                    token(n as u8),
                    now,
                ),
            )
            .unwrap()
    }

    #[test]
    fn room_names_are_checked_and_lower_cased() {
        assert_eq!(
            parse_room_name("Team-Standup").unwrap().as_str(),
            "team-standup"
        );
        assert!(parse_room_name("").is_none());
        assert!(parse_room_name(&"a".repeat(65)).is_none());
        assert!(parse_room_name(&"a".repeat(64)).is_some());
        for bad in ["a b", "a/b", "ä", "a_b", "..", "a%2f"] {
            assert!(parse_room_name(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn first_join_is_host_and_others_hear_of_newcomers() {
        let now = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("r");
        let a = join_n(&mut rooms, &r, 1, now);
        assert!(a.host && a.peers.is_empty());
        let b = join_n(&mut rooms, &r, 2, now);
        assert!(!b.host);
        assert_eq!(b.peers.len(), 1);
        assert_eq!(b.notices.len(), 1);
        assert_eq!(b.notices[0].to, vec![1]);
        assert!(matches!(b.notices[0].event, Event::PeerJoined(ref p) if p.id == b.you));
    }

    #[test]
    fn the_seventh_join_is_refused() {
        let now = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("r");
        for n in 1..=6 {
            join_n(&mut rooms, &r, n, now);
        }
        let seventh = rooms.ask(
            &r,
            ask(
                join_req("p", "client0007", None, false),
                conn(7),
                token(7),
                now,
            ),
        );
        assert_eq!(seventh.unwrap_err(), Refusal::RoomFull);
        assert_eq!(rooms.seat_count(), 6);
    }

    #[test]
    fn the_same_identity_takes_its_seat_over_without_a_second_joined() {
        let now = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("r");
        let a = join_n(&mut rooms, &r, 1, now);
        join_n(&mut rooms, &r, 2, now);
        let again = rooms
            .ask(
                &r,
                ask(
                    join_req("p", "client0001", Some(a.token), false),
                    conn(11),
                    token(99),
                    now,
                ),
            )
            .unwrap();
        assert_eq!(again.you, a.you, "same seat");
        assert!(again.token.matches(&a.token), "same token");
        assert!(again.host, "host rights kept");
        assert_eq!(again.replaced, Some(1));
        assert_eq!(again.notices.len(), 1);
        assert_eq!(again.notices[0].to, vec![2]);
        assert!(matches!(
            again.notices[0].event,
            Event::PeerRejoined { reset: true, .. }
        ));
        assert_eq!(rooms.seat_count(), 2);
        // The replaced socket can no longer act for the seat.
        assert!(rooms.leave(&r, a.you, ConnId(1), now).is_empty());
        assert!(rooms.route(&r, a.you, ConnId(1), SeatId(2), now).is_none());
        assert_eq!(rooms.seat_count(), 2);
    }

    #[test]
    fn a_known_client_without_the_right_token_never_takes_the_seat() {
        let now = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("r");
        let a = join_n(&mut rooms, &r, 1, now);
        for wrong in [None, Some(token(42))] {
            let other = rooms
                .ask(
                    &r,
                    ask(
                        join_req("p", "client0001", wrong, false),
                        conn(5),
                        token(5),
                        now,
                    ),
                )
                .unwrap();
            assert_ne!(other.you, a.you);
            assert!(other.replaced.is_none());
            assert!(matches!(other.notices[0].event, Event::PeerJoined(_)));
        }
    }

    #[test]
    fn signals_stay_inside_the_room() {
        let now = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let (r1, r2) = (room("one"), room("two"));
        let a = join_n(&mut rooms, &r1, 1, now);
        let b = join_n(&mut rooms, &r1, 2, now);
        let c = join_n(&mut rooms, &r2, 3, now);
        assert_eq!(rooms.route(&r1, a.you, ConnId(1), b.you, now), Some(2));
        assert_eq!(rooms.route(&r1, a.you, ConnId(1), c.you, now), None);
        assert_eq!(rooms.route(&r2, c.you, ConnId(3), a.you, now), None);
    }

    /// The host rules as a table: each host control, sent by the host, by a guest, by the host's
    /// replaced socket, and for a room that does not exist; only the host's live socket may.
    #[test]
    fn only_the_hosts_live_socket_may_use_host_controls() {
        #[derive(Debug, Clone, Copy)]
        enum Control {
            Password,
            Lock,
            Remove,
        }
        #[derive(Debug, Clone, Copy)]
        enum Sender {
            Host,
            Guest,
            HostsOldSocket,
            NoSuchRoom,
        }
        let t0 = Instant::now();
        for control in [Control::Password, Control::Lock, Control::Remove] {
            for sender in [
                Sender::Host,
                Sender::Guest,
                Sender::HostsOldSocket,
                Sender::NoSuchRoom,
            ] {
                let mut rooms = Rooms::new(limits(), 1);
                let r = room("den");
                let host = join_n(&mut rooms, &r, 1, t0);
                let guest = join_n(&mut rooms, &r, 2, t0);
                let third = join_n(&mut rooms, &r, 3, t0);
                let (who, socket, in_room) = match sender {
                    Sender::Host => (host.you, ConnId(1), r.clone()),
                    Sender::Guest => (guest.you, ConnId(2), r.clone()),
                    Sender::HostsOldSocket => {
                        // The host came back on socket 11; socket 1 no longer holds the seat.
                        rooms
                            .ask(
                                &r,
                                ask(
                                    join_req("p", "client0001", Some(host.token), true),
                                    conn(11),
                                    token(50),
                                    t0,
                                ),
                            )
                            .unwrap();
                        (host.you, ConnId(1), r.clone())
                    }
                    Sender::NoSuchRoom => (host.you, ConnId(1), room("elsewhere")),
                };
                let allowed = match control {
                    Control::Password => rooms
                        .set_password(&in_room, who, socket, Some(PasswordHash::new("pw")), t0)
                        .is_ok(),
                    Control::Lock => rooms.set_locked(&in_room, who, socket, true, t0).is_ok(),
                    Control::Remove => rooms.remove(&in_room, who, socket, third.you, t0).is_ok(),
                };
                let expected = matches!(sender, Sender::Host);
                assert_eq!(allowed, expected, "{control:?} by {sender:?}");
                // What a refused control did: nothing.
                if !expected {
                    assert!(rooms.password_of(&r).is_none(), "{control:?} by {sender:?}");
                    assert_eq!(rooms.seat_count(), 3, "{control:?} by {sender:?}");
                }
            }
        }
    }

    #[test]
    fn leaving_host_passes_host_to_the_longest_present() {
        let now = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("r");
        let a = join_n(&mut rooms, &r, 1, now);
        let b = join_n(&mut rooms, &r, 2, now);
        join_n(&mut rooms, &r, 3, now);
        let notices = rooms.leave(&r, a.you, ConnId(1), now);
        assert!(matches!(notices[0].event, Event::PeerLeft(id) if id == a.you));
        assert!(matches!(notices[1].event, Event::PeerUpdated(ref p) if p.id == b.you && p.host));
        assert_eq!(notices[1].to, vec![2, 3], "the new host hears it too");
    }

    #[test]
    fn a_lost_socket_holds_its_seat_for_the_grace_period() {
        let t0 = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("r");
        let a = join_n(&mut rooms, &r, 1, t0);
        join_n(&mut rooms, &r, 2, t0);
        let notices = rooms.lost(&r, a.you, ConnId(1), t0);
        assert!(matches!(notices[0].event, Event::PeerUpdated(ref p) if p.away));
        assert!(rooms.sweep_away(t0 + Duration::from_secs(29)).is_empty());
        // Resumed in time: same seat, no peer-left.
        let back = rooms
            .ask(
                &r,
                ask(
                    join_req("p", "client0001", Some(a.token), true),
                    conn(21),
                    token(0),
                    t0 + Duration::from_secs(29),
                ),
            )
            .unwrap();
        assert_eq!(back.you, a.you);
        assert!(back.replaced.is_none());
        assert!(
            matches!(back.notices[0].event, Event::PeerRejoined { reset: false, ref peer } if !peer.away)
        );
        // Lost again and not resumed: freed when grace ends.
        rooms.lost(&r, a.you, ConnId(21), t0 + Duration::from_secs(30));
        let notices = rooms.sweep_away(t0 + Duration::from_secs(60));
        assert!(matches!(notices[0].event, Event::PeerLeft(id) if id == a.you));
        assert_eq!(rooms.seat_count(), 1);
    }

    #[test]
    fn empty_rooms_expire_after_the_ttl_and_occupied_rooms_never() {
        let t0 = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let (quiet, busy) = (room("quiet"), room("busy"));
        let a = join_n(&mut rooms, &quiet, 1, t0);
        rooms.leave(&quiet, a.you, ConnId(1), t0);
        join_n(&mut rooms, &busy, 2, t0);
        let six_hours = Duration::from_secs(6 * 3600);
        assert_eq!(
            rooms.sweep_expired(t0 + six_hours - Duration::from_secs(1)),
            0
        );
        assert_eq!(rooms.sweep_expired(t0 + six_hours), 1);
        assert_eq!(rooms.room_count(), 1);
        assert_eq!(rooms.sweep_expired(t0 + six_hours * 100), 0, "occupied");
    }

    /// Joins `r` as a new identity `n` from `ip`.
    fn join_from(
        rooms: &mut Rooms<H>,
        r: &str,
        n: u32,
        ip: &str,
        now: Instant,
    ) -> Result<Admitted<H>, Refusal> {
        rooms.ask(
            &room(r),
            ask(
                join_req("p", &format!("client{n:04}"), None, false),
                conn_from(n, ip),
                token(n as u8),
                now,
            ),
        )
    }

    #[test]
    fn one_address_holds_at_most_its_rooms_and_its_own_spare_one_makes_way() {
        let t0 = Instant::now();
        let mut rooms = Rooms::new(
            RoomLimits {
                max_rooms: 10,
                ..limits()
            },
            1,
        );
        // Two rooms from one address (the test cap), both occupied: a third is refused.
        let a = join_from(&mut rooms, "a", 1, "203.0.113.5", t0).unwrap();
        join_from(&mut rooms, "b", 2, "203.0.113.5", t0).unwrap();
        assert_eq!(
            join_from(&mut rooms, "c", 3, "203.0.113.5", t0).unwrap_err(),
            Refusal::TooManyRooms
        );
        // Joining an existing room is never limited by it; nor are other addresses.
        let a2 = join_from(&mut rooms, "a", 4, "203.0.113.5", t0).unwrap();
        join_from(&mut rooms, "c", 5, "198.51.100.9", t0).unwrap();
        // Its empty, unprotected room makes way for its next one.
        rooms.leave(&room("a"), a.you, ConnId(1), t0);
        rooms.leave(&room("a"), a2.you, ConnId(4), t0);
        let d = join_from(&mut rooms, "d", 6, "203.0.113.5", t0)
            .unwrap()
            .you;
        assert!(rooms.password_of(&room("a")).is_none());
        assert_eq!(rooms.room_count(), 3, "b, c, d");
        // A protected empty room does not make way: it counts until its TTL.
        rooms
            .set_password(&room("d"), d, ConnId(6), Some(PasswordHash::new("pw")), t0)
            .unwrap();
        rooms.leave(&room("d"), d, ConnId(6), t0);
        assert_eq!(
            join_from(&mut rooms, "e", 7, "203.0.113.5", t0).unwrap_err(),
            Refusal::TooManyRooms
        );
        // Exempt connections (no address) are not counted.
        rooms
            .ask(
                &room("e"),
                ask(
                    join_req("p", "client0008", None, false),
                    conn(8),
                    token(8),
                    t0,
                ),
            )
            .unwrap();
    }

    #[test]
    fn at_the_room_cap_a_protected_empty_room_is_never_evicted() {
        let t0 = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        // "family" has a password and a lock, "club" a removal; both are empty and the oldest.
        let f = join_n(&mut rooms, &room("family"), 1, t0);
        rooms
            .set_password(
                &room("family"),
                f.you,
                ConnId(1),
                Some(PasswordHash::new("pw")),
                t0,
            )
            .unwrap();
        rooms
            .set_locked(&room("family"), f.you, ConnId(1), true, t0)
            .unwrap();
        rooms.leave(&room("family"), f.you, ConnId(1), t0);
        let c = join_n(&mut rooms, &room("club"), 2, t0);
        let troll = join_n(&mut rooms, &room("club"), 3, t0);
        rooms
            .remove(&room("club"), c.you, ConnId(2), troll.you, t0)
            .unwrap();
        rooms.leave(&room("club"), c.you, ConnId(2), t0);
        let later = t0 + Duration::from_secs(60);
        join_n(&mut rooms, &room("open"), 4, later);
        assert_eq!(rooms.room_count(), 3);
        // At the cap, a new room finds nothing it may evict.
        let refused = rooms.ask(
            &room("taken"),
            ask(
                join_req("p", "client0009", None, false),
                conn(9),
                token(9),
                later,
            ),
        );
        assert_eq!(refused.unwrap_err(), Refusal::ServerBusy);
        assert!(rooms.password_of(&room("family")).is_some());
    }

    #[test]
    fn at_the_room_cap_an_idle_empty_room_makes_way_and_busy_ones_refuse() {
        let t0 = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let a = join_n(&mut rooms, &room("a"), 1, t0);
        rooms.leave(&room("a"), a.you, ConnId(1), t0);
        join_n(&mut rooms, &room("b"), 2, t0);
        join_n(&mut rooms, &room("c"), 3, t0);
        join_n(&mut rooms, &room("d"), 4, t0); // evicts empty "a"
        assert_eq!(rooms.room_count(), 3);
        let refused = rooms.ask(
            &room("e"),
            ask(
                join_req("p", "client0005", None, false),
                conn(5),
                token(5),
                t0,
            ),
        );
        assert_eq!(refused.unwrap_err(), Refusal::ServerBusy);
        let over_budget = rooms.ask(
            &room("b"),
            ask(
                join_req("p", "client0006", None, false),
                conn(6),
                token(6),
                t0,
            )
            .no_heap(),
        );
        assert!(over_budget.is_ok(), "an existing room needs no new arena");
    }

    #[test]
    fn updates_reach_the_others_only() {
        let now = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("r");
        let a = join_n(&mut rooms, &r, 1, now);
        join_n(&mut rooms, &r, 2, now);
        let notices = rooms
            .update(
                &r,
                a.you,
                ConnId(1),
                Update {
                    audio: Some(false),
                    ..Update::default()
                },
                now,
            )
            .unwrap();
        assert_eq!(notices[0].to, vec![2]);
        assert!(matches!(notices[0].event, Event::PeerUpdated(ref p) if !p.audio && p.video));
    }
    /// What one join came to in a room that may ask to join: a seat, a knock, or a refusal.
    #[derive(Debug, PartialEq)]
    enum Came {
        Seat(SeatId),
        Knock(SeatId, Token),
        Refused(Refusal),
    }

    /// Joins as the join handler does: `join`, and a knock where it says so, under one borrow.
    fn come(
        rooms: &mut Rooms<H>,
        r: &RoomName,
        client: &str,
        tok: Option<Token>,
        c: Conn<H>,
        now: Instant,
    ) -> Came {
        let n = c.id.0 as u8;
        let join = join_req(client, client, tok, false);
        match rooms.join(r, &join, c.clone(), token(n), None, now, true) {
            Ok(a) => Came::Seat(a.you),
            Err(Refusal::MustKnock) => match rooms.knock(r, &join, c, token(n), now) {
                Ok(k) => Came::Knock(k.id, k.token),
                Err(e) => Came::Refused(e),
            },
            Err(e) => Came::Refused(e),
        }
    }

    fn events(notices: &[Notice<H>]) -> Vec<(Vec<H>, Event)> {
        notices
            .iter()
            .map(|n| (n.to.clone(), n.event.clone()))
            .collect()
    }

    /// A room whose host (socket 1), with `guests` seated (sockets 2, 3, …), turned "Ask to
    /// join" on.
    fn asking_room(now: Instant, guests: u32) -> (Rooms<H>, RoomName, SeatId) {
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("lobby");
        let host = join_n(&mut rooms, &r, 1, now);
        for n in 0..guests {
            join_n(&mut rooms, &r, n + 2, now);
        }
        let notices = rooms.set_ask(&r, host.you, ConnId(1), true, now).unwrap();
        assert!(matches!(
            notices[0].event,
            Event::RoomUpdated(RoomInfo { ask: true, .. })
        ));
        (rooms, r, host.you)
    }

    #[test]
    fn with_ask_to_join_a_newcomer_knocks_and_the_host_admits_it_into_the_knocks_seat() {
        let t0 = Instant::now();
        let (mut rooms, r, host) = asking_room(t0, 1);
        let Came::Knock(id, tok) = come(&mut rooms, &r, "guest-001", None, conn(7), t0) else {
            panic!("a newcomer knocks")
        };
        assert_eq!(rooms.seat_count(), 2, "a knock is no seat");
        // The knock's socket may not act as a seat.
        assert!(rooms.room_handles(&r, id, ConnId(7)).is_none());
        assert!(rooms.route(&r, id, ConnId(7), host, t0).is_none());
        // A guest may not admit; the host may.
        let guest = SeatId(host.0 + 1);
        assert_eq!(
            rooms.admit(&r, guest, ConnId(2), id, t0).unwrap_err(),
            HostError::NotHost
        );
        let notices = rooms.admit(&r, host, ConnId(1), id, t0).unwrap();
        assert_eq!(
            events(&notices),
            vec![(vec![7], Event::Admitted), (vec![1], Event::KnockGone(id))]
        );
        // Its join with the knock's token takes the seat under the knock's id.
        let seat = come(&mut rooms, &r, "guest-001", Some(tok), conn(7), t0);
        assert_eq!(seat, Came::Seat(id));
        assert_eq!(rooms.seat_count(), 3);
        // Another identity without the token is a new knock, never that seat.
        assert!(matches!(
            come(&mut rooms, &r, "guest-002", Some(tok), conn(3), t0),
            Came::Knock(other, _) if other != id
        ));
    }

    #[test]
    fn a_denied_knocker_may_knock_again_only_after_the_retry_delay() {
        let t0 = Instant::now();
        let (mut rooms, r, host) = asking_room(t0, 0);
        let Came::Knock(id, _) = come(
            &mut rooms,
            &r,
            "guest-001",
            None,
            conn_from(2, "198.51.100.7"),
            t0,
        ) else {
            panic!()
        };
        let denied = rooms.deny(&r, host, ConnId(1), id, t0).unwrap();
        assert_eq!(denied.handle, Some(2));
        assert_eq!(
            events(&denied.notices),
            vec![(vec![1], Event::KnockGone(id))]
        );
        let soon = t0 + Duration::from_secs(59);
        // The same identity, and a new one from the same address (a private window).
        for (client, n) in [("guest-001", 3), ("guest-new", 4)] {
            assert_eq!(
                come(
                    &mut rooms,
                    &r,
                    client,
                    None,
                    conn_from(n, "198.51.100.7"),
                    soon
                ),
                Came::Refused(Refusal::Denied),
                "{client}"
            );
        }
        // Someone else knocks meanwhile; the denied one may again after the delay.
        assert!(matches!(
            come(
                &mut rooms,
                &r,
                "other-001",
                None,
                conn_from(5, "192.0.2.1"),
                soon
            ),
            Came::Knock(..)
        ));
        let later = t0 + Duration::from_secs(60);
        assert!(matches!(
            come(
                &mut rooms,
                &r,
                "guest-001",
                None,
                conn_from(6, "198.51.100.7"),
                later
            ),
            Came::Knock(..)
        ));
    }

    #[test]
    fn resumed_seats_never_knock_and_the_rules_before_the_knock_still_refuse() {
        let t0 = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("lobby");
        let host = join_n(&mut rooms, &r, 1, t0);
        let guest = join_n(&mut rooms, &r, 2, t0);
        rooms.set_ask(&r, host.you, ConnId(1), true, t0).unwrap();
        rooms.lost(&r, guest.you, ConnId(2), t0);
        // The seat's owner comes back with its token: its seat, no knock.
        assert_eq!(
            come(
                &mut rooms,
                &r,
                "client0002",
                Some(guest.token),
                conn(12),
                t0
            ),
            Came::Seat(guest.you)
        );
        // Locked beats knocking: a locked room admits nobody new, not even to its lobby.
        rooms.set_locked(&r, host.you, ConnId(1), true, t0).unwrap();
        assert_eq!(
            come(&mut rooms, &r, "guest-003", None, conn(3), t0),
            Came::Refused(Refusal::Locked)
        );
    }

    #[test]
    fn knocks_respect_the_seat_cap_and_the_per_address_cap() {
        let t0 = Instant::now();
        let (mut rooms, r, host) = asking_room(t0, 4);
        // Five seated: two may knock from one address, a third from it may not.
        let ip = "203.0.113.50";
        let Came::Knock(a, _) = come(&mut rooms, &r, "knock-a01", None, conn_from(11, ip), t0)
        else {
            panic!()
        };
        let Came::Knock(b, _) = come(&mut rooms, &r, "knock-b01", None, conn_from(12, ip), t0)
        else {
            panic!()
        };
        assert_eq!(
            come(&mut rooms, &r, "knock-c01", None, conn_from(13, ip), t0),
            Came::Refused(Refusal::TooManyKnocks)
        );
        // One place is left: the first admit takes it, the second finds none and waits.
        rooms.admit(&r, host, ConnId(1), a, t0).unwrap();
        assert_eq!(
            rooms.admit(&r, host, ConnId(1), b, t0).unwrap_err(),
            HostError::NoFreeSeat
        );
        // With the kept place, the room counts as full: a new knock is refused outright.
        assert_eq!(
            come(
                &mut rooms,
                &r,
                "knock-d01",
                None,
                conn_from(14, "192.0.2.9"),
                t0
            ),
            Came::Refused(Refusal::RoomFull)
        );
        // An admitted knock that never takes its seat frees the place after the grace period.
        let notices = rooms.sweep_away(t0 + Duration::from_secs(31));
        assert!(
            notices.iter().all(|n| n.event != Event::KnockGone(a)),
            "admitted: off the list already"
        );
        assert!(rooms
            .admit(&r, host, ConnId(1), b, t0 + Duration::from_secs(31))
            .is_ok());
    }

    #[test]
    fn a_host_arriving_later_is_shown_the_knocks_left_waiting() {
        let t0 = Instant::now();
        let (mut rooms, r, host) = asking_room(t0, 1);
        let guest_token = token(2);
        let Came::Knock(id, _) = come(&mut rooms, &r, "knock-001", None, conn(3), t0) else {
            panic!()
        };
        let info = KnockInfo {
            id,
            name: Name::try_from("knock-001").unwrap(),
        };
        // The host goes: the guest becomes host and is shown the knock.
        let notices = rooms.leave(&r, host, ConnId(1), t0);
        assert!(events(&notices).contains(&(vec![2], Event::Knock(info.clone()))));
        // A host that comes back to its seat (a reload) gets the list in its `joined`.
        let back = rooms
            .ask(
                &r,
                ask(
                    join_req("p", "client0002", Some(guest_token), true),
                    conn(22),
                    token(22),
                    t0,
                ),
            )
            .unwrap();
        assert_eq!(back.knocks, vec![info]);
        let newcomer = come(&mut rooms, &r, "knock-002", None, conn(4), t0);
        assert!(matches!(newcomer, Came::Knock(..)));
        // A knocker who gives up is taken off the host's list.
        let notices = rooms.leave(&r, id, ConnId(3), t0);
        assert_eq!(events(&notices), vec![(vec![22], Event::KnockGone(id))]);
    }

    #[test]
    fn knocks_denials_and_ask_to_join_survive_a_restart() {
        let t0 = Instant::now();
        let (mut before, r, host) = asking_room(t0, 0);
        let Came::Knock(waiting, wtok) = come(&mut before, &r, "knock-001", None, conn(3), t0)
        else {
            panic!()
        };
        let Came::Knock(let_in, ltok) = come(&mut before, &r, "knock-002", None, conn(4), t0)
        else {
            panic!()
        };
        let Came::Knock(turned, _) = come(&mut before, &r, "knock-003", None, conn(5), t0) else {
            panic!()
        };
        before.admit(&r, host, ConnId(1), let_in, t0).unwrap();
        before.deny(&r, host, ConnId(1), turned, t0).unwrap();
        let saved: Vec<SavedRoom> =
            serde_json::from_str(&serde_json::to_string(&before.save(t0)).unwrap()).unwrap();
        let mut after: Rooms<H> = Rooms::new(limits(), 1);
        after.restore(saved, Duration::from_secs(5), t0);
        // The waiting knocker reconnects with its token: the same knock, still waiting.
        assert_eq!(
            come(&mut after, &r, "knock-001", Some(wtok), conn(13), t0),
            Came::Knock(waiting, wtok)
        );
        // The admitted one takes its seat; the denied one still waits out its delay.
        assert_eq!(
            come(&mut after, &r, "knock-002", Some(ltok), conn(14), t0),
            Came::Seat(let_in)
        );
        assert_eq!(
            come(&mut after, &r, "knock-003", None, conn(15), t0),
            Came::Refused(Refusal::Denied)
        );
        // New ids stay clear of the knocks' ids.
        assert!(
            matches!(come(&mut after, &r, "knock-004", None, conn(16), t0), Came::Knock(id, _) if id.0 > let_in.0.max(waiting.0))
        );
        // The host resumes and sees who waits.
        let mut saved_host = None;
        for room in before.save(t0) {
            saved_host = room.seats.into_iter().find(|s| s.host);
        }
        let host_token = Token::from_hex(&saved_host.unwrap().token).unwrap();
        let back = after
            .ask(
                &r,
                ask(
                    join_req("p", "client0001", Some(host_token), true),
                    conn(21),
                    token(21),
                    t0,
                ),
            )
            .unwrap();
        assert_eq!(back.knocks.len(), 2, "{:?}", back.knocks);
        assert!(back.room.ask);
    }

    #[test]
    fn removing_someone_turns_ask_to_join_on_and_turning_it_off_lets_the_waiting_in() {
        let t0 = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("club");
        let host = join_n(&mut rooms, &r, 1, t0);
        let troll = join_n(&mut rooms, &r, 2, t0);
        let removal = rooms
            .remove(&r, host.you, ConnId(1), troll.you, t0)
            .unwrap();
        assert!(events(&removal.notices).contains(&(
            vec![1],
            Event::RoomUpdated(RoomInfo {
                locked: false,
                password: false,
                ask: true,
                recording_allowed: true,
            })
        )));
        // The troll from another network (a new identity, no address known): a knock.
        let Came::Knock(id, _) = come(&mut rooms, &r, "troll-lte", None, conn(3), t0) else {
            panic!()
        };
        let Came::Knock(id2, _) = come(&mut rooms, &r, "friend-01", None, conn(4), t0) else {
            panic!()
        };
        // Off: both waiting are admitted (seats allow), and the hosts' list empties.
        let notices = rooms.set_ask(&r, host.you, ConnId(1), false, t0).unwrap();
        let ev = events(&notices);
        assert!(
            ev.contains(&(vec![3], Event::Admitted)) && ev.contains(&(vec![4], Event::Admitted))
        );
        assert!(
            ev.contains(&(vec![1], Event::KnockGone(id)))
                && ev.contains(&(vec![1], Event::KnockGone(id2)))
        );
    }

    #[test]
    fn a_reload_and_the_first_into_an_empty_room_do_not_knock() {
        let t0 = Instant::now();
        let (mut rooms, r, host) = asking_room(t0, 1);
        let guest = SeatId(host.0 + 1);
        // The guest's tab reloads: its socket closes (the seat goes), the same tab joins again
        // with the old token at once: a new seat, no knock.
        rooms.leave(&r, guest, ConnId(2), t0);
        let back = come(&mut rooms, &r, "client0002", Some(token(2)), conn(12), t0);
        assert!(matches!(back, Came::Seat(id) if id != guest), "{back:?}");
        // After the grace period it would knock like anyone.
        rooms.leave(&r, SeatId(host.0 + 2), ConnId(12), t0);
        let late = t0 + Duration::from_secs(31);
        assert!(matches!(
            come(
                &mut rooms,
                &r,
                "client0002",
                Some(token(12)),
                conn(13),
                late
            ),
            Came::Knock(..)
        ));
        // Everyone goes, a knock still waits: the next to come is host and sees it.
        rooms.leave(&r, host, ConnId(1), late);
        assert_eq!(rooms.seat_count(), 0);
        let first = rooms
            .ask(
                &r,
                ask(
                    join_req("p", "another-1", None, false),
                    conn(20),
                    token(20),
                    late,
                ),
            )
            .unwrap();
        assert!(first.host);
        assert_eq!(first.knocks.len(), 1);
    }

    /// What "Ask to join" can make a room hold at worst: 6 knocks, the denials, the recent
    /// leavers (docs/SECURITY.md quotes it). Nothing of it for a room that never asks.
    #[test]
    fn knocks_denials_and_leavers_are_bounded() {
        let knocks = MAX_KNOCKS * std::mem::size_of::<Knock<H>>();
        let denied = MAX_DENIED * std::mem::size_of::<Denial>();
        let left = MAX_PEERS_PER_ROOM * std::mem::size_of::<(ClientId, Token, Instant)>();
        let worst = knocks + denied + left;
        println!("knocks {knocks}, denials {denied}, leavers {left}: {worst} bytes at worst");
        assert!(worst <= 4 * 1024, "{worst}");
        let idle: Room<H> = Room::new(Instant::now());
        assert_eq!(
            (
                idle.knocks.capacity(),
                idle.denied.capacity(),
                idle.left.capacity()
            ),
            (0, 0, 0),
            "a room that never asks holds none of it"
        );
    }

    #[test]
    fn a_lost_knock_is_held_for_the_grace_period_then_dropped() {
        let t0 = Instant::now();
        let (mut rooms, r, _) = asking_room(t0, 0);
        let Came::Knock(id, tok) = come(&mut rooms, &r, "knock-001", None, conn(3), t0) else {
            panic!()
        };
        // The same socket sending its join again is still the one waiting, replacing nobody.
        let join = join_req("knock-001", "knock-001", Some(tok), false);
        let again = rooms.knock(&r, &join, conn(3), token(9), t0).unwrap();
        assert_eq!((again.id, again.replaced), (id, None));
        rooms.lost(&r, id, ConnId(3), t0);
        assert!(rooms.sweep_away(t0 + Duration::from_secs(29)).is_empty());
        assert_eq!(
            come(&mut rooms, &r, "knock-001", Some(tok), conn(13), t0),
            Came::Knock(id, tok)
        );
        rooms.lost(&r, id, ConnId(13), t0 + Duration::from_secs(29));
        let notices = rooms.sweep_away(t0 + Duration::from_secs(60));
        assert_eq!(events(&notices), vec![(vec![1], Event::KnockGone(id))]);
    }

    fn recording(on: bool) -> Update {
        Update {
            recording: Some(on),
            ..Update::default()
        }
    }

    /// Who is shown recording, by the peer list a late joiner gets.
    fn recorders(admitted: &Admitted<H>) -> Vec<SeatId> {
        admitted
            .peers
            .iter()
            .filter(|p| p.recording)
            .map(|p| p.id)
            .collect()
    }

    #[test]
    fn recording_is_told_to_everyone_the_recorder_too_and_to_late_joiners() {
        let now = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("r");
        let a = join_n(&mut rooms, &r, 1, now);
        join_n(&mut rooms, &r, 2, now);
        let notices = rooms
            .update(&r, a.you, ConnId(1), recording(true), now)
            .unwrap();
        // The recorder's own copy is its go-ahead: queued with everyone's, under the same lock.
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].to, vec![1, 2]);
        assert!(
            matches!(notices[0].event, Event::PeerUpdated(ref p) if p.recording && p.id == a.you)
        );
        let late = join_n(&mut rooms, &r, 3, now);
        assert_eq!(
            recorders(&late),
            vec![a.you],
            "a late joiner sees who records"
        );
        // Another field alone does not touch it, and goes to the others only.
        let notices = rooms
            .update(
                &r,
                a.you,
                ConnId(1),
                Update {
                    hand: Some(true),
                    ..Update::default()
                },
                now,
            )
            .unwrap();
        assert_eq!(notices[0].to, vec![2, 3]);
        assert!(matches!(notices[0].event, Event::PeerUpdated(ref p) if p.recording && p.hand));
        let notices = rooms
            .update(&r, a.you, ConnId(1), recording(false), now)
            .unwrap();
        assert_eq!(notices[0].to, vec![1, 2, 3]);
        assert!(matches!(notices[0].event, Event::PeerUpdated(ref p) if !p.recording));
    }

    #[test]
    fn the_host_turns_recording_off_stopping_every_recording_and_refusing_new_ones() {
        let now = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("r");
        let host = join_n(&mut rooms, &r, 1, now);
        let guest = join_n(&mut rooms, &r, 2, now);
        assert!(host.room.recording_allowed && guest.room.recording_allowed);
        rooms
            .update(&r, guest.you, ConnId(2), recording(true), now)
            .unwrap();
        // Only the host may.
        assert_eq!(
            rooms
                .set_recording_allowed(&r, guest.you, ConnId(2), false, now)
                .unwrap_err(),
            HostError::NotHost
        );
        let changes = rooms.changes();
        let notices = rooms
            .set_recording_allowed(&r, host.you, ConnId(1), false, now)
            .unwrap();
        assert!(rooms.changes() > changes, "a setting a restart keeps");
        // First the recorder's seat (to everyone, the recorder too, whose page stops), then the room.
        assert_eq!(notices.len(), 2);
        assert_eq!(notices[0].to, vec![1, 2]);
        assert!(
            matches!(notices[0].event, Event::PeerUpdated(ref p) if p.id == guest.you && !p.recording)
        );
        assert!(matches!(
            notices[1].event,
            Event::RoomUpdated(RoomInfo {
                recording_allowed: false,
                ..
            })
        ));
        assert_eq!(
            rooms
                .update(&r, guest.you, ConnId(2), recording(true), now)
                .unwrap_err(),
            UpdateError::RecordingOff
        );
        let late = join_n(&mut rooms, &r, 3, now);
        assert!(recorders(&late).is_empty());
        assert!(!late.room.recording_allowed);
        // Stopping is always allowed, and so is everything else.
        assert!(rooms
            .update(&r, guest.you, ConnId(2), recording(false), now)
            .is_ok());
        // Back on: recording may start again.
        rooms
            .set_recording_allowed(&r, host.you, ConnId(1), true, now)
            .unwrap();
        assert!(rooms
            .update(&r, guest.you, ConnId(2), recording(true), now)
            .is_ok());
    }

    #[test]
    fn a_resumed_page_keeps_recording_a_new_page_does_not() {
        let now = Instant::now();
        let mut rooms = Rooms::new(limits(), 1);
        let r = room("r");
        join_n(&mut rooms, &r, 1, now);
        let a = join_n(&mut rooms, &r, 2, now);
        rooms
            .update(&r, a.you, ConnId(2), recording(true), now)
            .unwrap();
        let back = |rooms: &mut Rooms<H>, n: u32, resume: bool| {
            rooms
                .ask(
                    &r,
                    ask(
                        join_req("p", "client0002", Some(token(2)), resume),
                        conn(n),
                        token(99),
                        now,
                    ),
                )
                .unwrap()
        };
        back(&mut rooms, 3, true);
        let watcher = join_n(&mut rooms, &r, 4, now);
        assert_eq!(
            recorders(&watcher),
            vec![a.you],
            "the same page, still recording"
        );
        back(&mut rooms, 5, false);
        let watcher = join_n(&mut rooms, &r, 6, now);
        assert!(
            recorders(&watcher).is_empty(),
            "a reloaded page lost its recorder"
        );
    }

    #[test]
    fn recording_off_survives_a_restart_and_counts_as_protection() {
        let t0 = Instant::now();
        let mut before: Rooms<H> = Rooms::new(limits(), 1000);
        let r = room("r");
        let host = join_n(&mut before, &r, 1, t0);
        before
            .set_recording_allowed(&r, host.you, ConnId(1), false, t0)
            .unwrap();
        let saved = before.save(t0);
        assert!(saved[0].recording_off);
        let mut after: Rooms<H> = Rooms::new(limits(), 1);
        after.restore(saved, Duration::ZERO, t0);
        let back = after
            .ask(
                &r,
                ask(
                    join_req("p", "client0001", Some(token(1)), false),
                    conn(9),
                    token(9),
                    t0,
                ),
            )
            .unwrap();
        assert!(!back.room.recording_allowed);
        assert!(after.rooms[&r].is_protected());
    }
}
