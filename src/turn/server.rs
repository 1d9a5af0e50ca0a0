//! The built-in STUN and TURN server (RFC 8489, RFC 8656): Binding for anyone; Allocate,
//! Refresh, CreatePermission, ChannelBind, Send/Data and ChannelData for holders of a credential
//! this process issued to a live seat. Clients reach it over UDP or TCP on one port
//! (`--stun-listen`, 3478); relayed addresses are UDP ports from `--relay-ports`.
//!
//! Safety, in the order a packet meets it:
//! - an allocation is admitted only against the `turn` arena and the seat's quota, like every
//!   other thing a client can make the server hold;
//! - a peer must be a public address, an allowed network (`--relay-allow`), or another of our
//!   own relayed addresses (relay to relay) - never this host's loopback, LAN or own services;
//! - each allocation has a bandwidth bucket, and caps on its permissions and channels;
//! - allocations end with their lifetime, or within a second of their seat going.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::bucket::{Bucket, Rate};
use crate::budget::Permit;
use crate::config::in_networks;
use crate::guard::{AddrKey, Open, TurnStreamSlot};
use crate::metrics::bump;
use crate::password::{hmac_sha1, hmac_sha1_verify};
use crate::protocol::SeatId;
use crate::state::State;
use crate::stun::{self, attr, Builder, Class, Message};

pub const REALM: &str = "videomeet";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
const DEFAULT_LIFETIME: u64 = 600;
const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// Largest packet relayed: an Ethernet MTU's worth plus headroom; WebRTC stays under 1,300.
const MAX_PACKET: usize = 1600;
const UDP_PROTOCOL: u8 = 17;

/// The bound sockets, made before serving so a taken port is reported at start.
pub struct Sockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    /// TURN over TLS (`turns:`), on its own port with the HTTPS certificate.
    pub tls: Option<(TcpListener, Arc<crate::tls::Tls>)>,
}

impl Sockets {
    /// Binds UDP and TCP on the same port (with port 0, a port free for both).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Sockets> {
        let mut tries = if addr.port() == 0 { 20 } else { 1 };
        loop {
            let udp = UdpSocket::bind(addr).await?;
            let port = udp.local_addr()?.port();
            match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
                Ok(tcp) => {
                    return Ok(Sockets {
                        udp,
                        tcp,
                        tls: None,
                    })
                }
                Err(e) if tries == 1 => return Err(e),
                Err(_) => tries -= 1,
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.udp.local_addr().map_or(0, |a| a.port())
    }
}

/// Who an allocation belongs to: RFC 8656's 5-tuple, which for UDP is the client's address on
/// our one socket, for TCP the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    Udp(SocketAddr),
    Tcp(u64),
}

/// How to reach the client: our UDP socket and its address, or its TCP connection's writer.
#[derive(Clone)]
enum Link {
    Udp(Arc<UdpSocket>, SocketAddr),
    Tcp(mpsc::Sender<Vec<u8>>),
}

impl Link {
    /// Never waits: a full queue or socket buffer drops the packet, as the network would.
    fn send(&self, packet: Vec<u8>) -> bool {
        match self {
            Link::Udp(socket, to) => socket.try_send_to(&packet, *to).is_ok(),
            Link::Tcp(tx) => tx.try_send(packet).is_ok(),
        }
    }

    fn is_stream(&self) -> bool {
        matches!(self, Link::Tcp(_))
    }
}

struct Allocation {
    link: Link,
    /// The client's address as the relay sees it, for the per-address quota.
    client: IpAddr,
    /// Shared by all allocations of the seat, and by all allocations.
    seat_bucket: Arc<Mutex<Bucket>>,
    total_bucket: Arc<Mutex<Bucket>>,
    socket: Arc<UdpSocket>,
    relayed: SocketAddr,
    username: String,
    seat: SeatId,
    /// The Allocate's transaction id, so a retransmitted Allocate gets the same success.
    txid: [u8; 12],
    inner: Mutex<Inner>,
    task: Mutex<Option<AbortHandle>>,
    state: Arc<State>,
}

struct Inner {
    expires: Instant,
    permissions: Vec<(IpAddr, Instant)>,
    channels: Vec<(u16, SocketAddr, Instant)>,
    /// Bytes this allocation may still pass (`turn.allocation_kbit_per_sec`).
    bucket: Bucket,
}

impl Allocation {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        let ip = ip.to_canonical();
        self.inner()
            .permissions
            .iter()
            .any(|(p, until)| *p == ip && *until > now)
    }

    /// Takes `bytes` from the allocation's, the seat's and the relay's bandwidth buckets;
    /// false means drop the packet, as a congested link would.
    fn spend(&self, bytes: usize, now: Instant) -> bool {
        let limits = self.state.limits();
        let n = bytes as f64;
        self.inner()
            .bucket
            .take_n(n, Rate::kbit_per_sec(limits.allocation_kbit_per_sec), now)
            && take(
                &self.seat_bucket,
                n,
                Rate::kbit_per_sec(limits.seat_kbit_per_sec),
                now,
            )
            && take(
                &self.total_bucket,
                n,
                Rate::kbit_per_sec(limits.total_mbit_per_sec * 1000),
                now,
            )
    }

    fn close(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        self.state.budget.allocations.release(1);
    }
}

/// Takes `n` from a shared bucket.
fn take(bucket: &Mutex<Bucket>, n: f64, rate: Rate, now: Instant) -> bool {
    bucket
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take_n(n, rate, now)
}

/// Of the allocation arena's last quarter, only an address's first few allocations may take
/// a place: a newcomer's browser can always relay its five peer connections, however many
/// allocations a few busy addresses hold.
const RESERVED_PER_ADDRESS: usize = 6;

/// The relay: every allocation, and what checks them.
pub struct Relay {
    state: Arc<State>,
    secret: Vec<u8>,
    nonce_key: [u8; 32],
    allocations: Mutex<Table>,
    /// Addresses of this host (interfaces, `--public-ip`, loopback): peers there are reachable
    /// only on a port that is one of our live relayed addresses.
    own: HashSet<IpAddr>,
    next_tcp: std::sync::atomic::AtomicU64,
    /// All relayed traffic together (`turn.total_mbit_per_sec`).
    total_bucket: Arc<Mutex<Bucket>>,
    /// Answers to requests that carry no valid credential (Binding, 401), per source address:
    /// they are a little larger than the request, so unlimited they would amplify a spoofed
    /// flood. Bounded by `rates.tracked_addresses`, swept by the housekeeping.
    unauthenticated: Mutex<HashMap<AddrKey, Bucket>>,
}

#[derive(Default)]
struct Table {
    by_client: HashMap<ClientKey, Arc<Allocation>>,
    relay_ports: HashSet<u16>,
    /// Each seat's bandwidth bucket, shared by its allocations (`turn.seat_kbit_per_sec`).
    seat_buckets: HashMap<SeatId, Arc<Mutex<Bucket>>>,
}

impl Relay {
    /// Starts serving on `sockets` with credentials made from `secret`.
    pub fn start(state: Arc<State>, sockets: Sockets, secret: &str) -> Arc<Relay> {
        let mut nonce_key = [0u8; 32];
        getrandom::fill(&mut nonce_key).expect("the OS random source is available");
        let mut own: HashSet<IpAddr> = crate::tls::local_addresses().into_iter().collect();
        own.extend(state.config.public_ip);
        own.insert(IpAddr::V4(Ipv4Addr::LOCALHOST));
        own.insert(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST));
        let total = Rate::kbit_per_sec(state.limits().total_mbit_per_sec * 1000);
        let relay = Arc::new(Relay {
            total_bucket: Arc::new(Mutex::new(Bucket::full(total, Instant::now()))),
            unauthenticated: Mutex::new(HashMap::new()),
            state,
            secret: secret.as_bytes().to_vec(),
            nonce_key,
            allocations: Mutex::new(Table::default()),
            own,
            next_tcp: std::sync::atomic::AtomicU64::new(1),
        });
        let udp = Arc::new(sockets.udp);
        // Two readers: one core each on a small host; recv on a shared socket is safe.
        for _ in 0..2 {
            tokio::spawn(relay.clone().serve_udp(udp.clone()));
        }
        tokio::spawn(relay.clone().serve_tcp(sockets.tcp, None));
        if let Some((listener, tls)) = sockets.tls {
            tokio::spawn(relay.clone().serve_tcp(listener, Some(tls)));
        }
        tokio::spawn(relay.clone().housekeeping());
        relay
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.allocations.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn serve_udp(self: Arc<Relay>, socket: Arc<UdpSocket>) {
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let (n, from) = tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok(r) => r,
                    // ICMP errors from earlier sends surface here; they are not ours to act on.
                    Err(_) => continue,
                },
                () = self.state.stopped() => return,
            };
            let link = Link::Udp(socket.clone(), from);
            if let Some(reply) = self.handle(&buf[..n], ClientKey::Udp(from), &link, from) {
                link.send(reply);
            }
        }
    }

    /// TURN over TCP, or over TLS when `tls` is given (the handshake gets as long as an HTTP
    /// client's headers).
    async fn serve_tcp(self: Arc<Relay>, listener: TcpListener, tls: Option<Arc<crate::tls::Tls>>) {
        loop {
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(r) => r,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = self.state.stopped() => return,
            };
            let state = &self.state;
            let now = Instant::now();
            let slot = if state.limits_apply_to(peer.ip()) {
                if state.guard.connection(peer.ip(), now).is_err() {
                    bump(&state.metrics.connections_refused);
                    continue;
                }
                match state.guard.open(Open::TurnStream, peer.ip(), now) {
                    Ok(slot) => Some(slot),
                    Err(_) => {
                        bump(&state.metrics.turn_streams_refused);
                        continue;
                    }
                }
            } else {
                None
            };
            // Their own arena: TURN connections can never take the WebSockets' sockets.
            let Some(permit) = Permit::acquire(&state.budget, |b| &b.turn_streams) else {
                bump(&state.metrics.turn_streams_refused);
                continue;
            };
            let permit = (permit, slot);
            let _ = stream.set_nodelay(true);
            let id = self
                .next_tcp
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(tls) = &tls else {
                tokio::spawn(self.clone().serve_stream(stream, peer, id, permit));
                continue;
            };
            let (relay, acceptor) = (self.clone(), tls.acceptor());
            let limit = Duration::from_secs(state.limits().header_timeout_secs);
            tokio::spawn(async move {
                match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => relay.serve_stream(stream, peer, id, permit).await,
                    _ => bump(&relay.state.metrics.tls_handshakes_failed),
                }
            });
        }
    }

    /// One TCP client: STUN messages and padded ChannelData frames back to back (RFC 8656
    /// §12.5), answered in order; data for it from peers is queued to a writer.
    pub async fn serve_stream<S>(
        self: Arc<Relay>,
        stream: S,
        peer: SocketAddr,
        id: u64,
        _permit: (Permit, Option<TurnStreamSlot>),
    ) where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
        let write = tokio::spawn(async move {
            while let Some(packet) = rx.recv().await {
                if writer.write_all(&packet).await.is_err() {
                    break;
                }
            }
        });
        let link = Link::Tcp(tx);
        let key = ClientKey::Tcp(id);
        let mut buf = vec![0u8; MAX_PACKET + 4];
        let mut have = 0usize;
        // A client that has not allocated within `timers.join_timeout_secs` of connecting is
        // closed, however it trickles (a browser allocates within a round trip or two).
        let allocate_by = tokio::time::Instant::now()
            + Duration::from_secs(self.state.limits().join_timeout_secs);
        let mut allocated = false;
        loop {
            // Frame boundaries come from the 4-byte head; anything unframeable ends the stream.
            let need = if have >= 4 {
                match stun::stream_frame_len(&buf[..4]) {
                    Some(len) if len <= buf.len() => len,
                    _ => break,
                }
            } else {
                4
            };
            if have >= need {
                if let Some(reply) = self.handle(&buf[..need], key, &link, peer) {
                    link.send(reply);
                }
                buf.copy_within(need..have, 0);
                have -= need;
                continue;
            }
            // Until it allocates, the connection has a fixed deadline that reads do not move;
            // after, it lives as long as its allocation (RFC 8656 section 3.1: one TCP
            // connection, one allocation) and goes with it.
            let has_allocation = self.table().by_client.contains_key(&key);
            if allocated && !has_allocation {
                break;
            }
            allocated |= has_allocation;
            let until = if allocated {
                tokio::time::Instant::now()
                    + Duration::from_secs(self.state.limits().lifetime_max_secs)
            } else {
                allocate_by
            };
            let read = tokio::select! {
                r = tokio::time::timeout_at(until, reader.read(&mut buf[have..])) => r,
                () = self.state.stopped() => break,
            };
            match read {
                Ok(Ok(n)) if n > 0 => have += n,
                _ => break,
            }
        }
        self.remove(key);
        write.abort();
    }

    /// Answers one packet from a client. Returns the reply to send back, if any.
    fn handle(
        &self,
        packet: &[u8],
        key: ClientKey,
        link: &Link,
        from: SocketAddr,
    ) -> Option<Vec<u8>> {
        let now = Instant::now();
        if let Some((channel, data)) = stun::parse_channel_data(packet) {
            self.channel_data_from_client(key, channel, data, now);
            return None;
        }
        let msg = Message::parse(packet)?;
        let fingerprint = msg.has(attr::FINGERPRINT);
        match msg.class {
            Class::Indication if msg.method == stun::SEND => {
                self.send_indication(key, &msg, now);
                return None;
            }
            Class::Request => {}
            _ => return None,
        }
        // Everything answered before the credential is checked is rate-limited per source.
        let unauthenticated = |relay: &Relay| relay.unauthenticated_answer_allowed(from.ip(), now);
        let unknown = msg.unknown_required();
        if !unknown.is_empty() {
            if !unauthenticated(self) {
                return None;
            }
            log::debug!("turn: {from} sent unknown attributes {unknown:04x?}");
            let list: Vec<u8> = unknown.iter().flat_map(|t| t.to_be_bytes()).collect();
            return Some(
                Builder::new(msg.method, Class::Error, msg.txid)
                    .error(420, "Unknown Attribute")
                    .attr(attr::UNKNOWN_ATTRIBUTES, &list)
                    .finish(None, fingerprint),
            );
        }
        if msg.method == stun::BINDING {
            if !unauthenticated(self) {
                return None;
            }
            bump(&self.state.metrics.stun_bindings);
            return Some(
                Builder::new(stun::BINDING, Class::Success, msg.txid)
                    .xor_address(attr::XOR_MAPPED_ADDRESS, from)
                    .finish(None, fingerprint),
            );
        }
        if ![
            stun::ALLOCATE,
            stun::REFRESH,
            stun::CREATE_PERMISSION,
            stun::CHANNEL_BIND,
        ]
        .contains(&msg.method)
        {
            if !unauthenticated(self) {
                return None;
            }
            return Some(error(&msg, 400, "Bad Request", None, fingerprint));
        }
        let auth = match self.authenticate(&msg, from) {
            Ok(auth) => auth,
            Err(reply) => {
                bump(&self.state.metrics.turn_auth_failures);
                if !unauthenticated(self) {
                    return None;
                }
                return Some(reply);
            }
        };
        let reply = match msg.method {
            stun::ALLOCATE => self.allocate(&msg, key, link, from, &auth, now),
            stun::REFRESH => self.refresh(&msg, key, &auth, now),
            stun::CREATE_PERMISSION => self.create_permission(&msg, key, &auth, now),
            _ => self.channel_bind(&msg, key, &auth, now),
        };
        Some(match reply {
            Ok(builder) => builder.finish(Some(&auth.key), fingerprint),
            Err((code, reason)) => error(&msg, code, reason, Some(&auth.key), fingerprint),
        })
    }

    /// Checks the long-term credential: a nonce of ours that has not expired, a username
    /// `EXPIRY:SEAT` not past its expiry for a seat that exists, and MESSAGE-INTEGRITY under the
    /// key its REST password gives. Every failure is a 401 or 438 carrying a fresh nonce.
    fn authenticate(&self, msg: &Message, from: SocketAddr) -> Result<Auth, Vec<u8>> {
        let fp = msg.has(attr::FINGERPRINT);
        let challenge = |code: u16, reason: &str| {
            Builder::new(msg.method, Class::Error, msg.txid)
                .error(code, reason)
                .attr(attr::REALM, REALM.as_bytes())
                .attr(attr::NONCE, self.nonce(from.ip()).as_bytes())
                .finish(None, fp)
        };
        if !msg.has(attr::MESSAGE_INTEGRITY) {
            return Err(challenge(401, "Unauthorized"));
        }
        let (Some(username), Some(_), Some(nonce)) = (
            msg.text(attr::USERNAME),
            msg.get(attr::REALM),
            msg.text(attr::NONCE),
        ) else {
            return Err(error(msg, 400, "Bad Request", None, fp));
        };
        if !self.nonce_ok(nonce, from.ip()) {
            return Err(challenge(438, "Stale Nonce"));
        }
        let Some((expiry, seat)) = username
            .split_once(':')
            .and_then(|(e, s)| Some((e.parse::<u64>().ok()?, SeatId(s.parse().ok()?))))
        else {
            return Err(challenge(401, "Unauthorized"));
        };
        let password = crate::turn::base64(&hmac_sha1(&self.secret, username.as_bytes()));
        let key = stun::long_term_key(username, REALM, &password);
        if !msg.integrity_ok(&key) || expiry < unix_now() {
            return Err(challenge(401, "Unauthorized"));
        }
        // The credential is ours and current; the seat it was made for must still exist.
        if !self.state.rooms().seat_ids().any(|s| s == seat) {
            return Err(challenge(401, "Unauthorized"));
        }
        Ok(Auth {
            username: username.to_string(),
            seat,
            key,
        })
    }

    /// A nonce that carries its own expiry and is bound to the client's address by an HMAC, so
    /// the server keeps no per-client state: `EXPIRY(hex) . MAC(hex)`.
    fn nonce(&self, ip: IpAddr) -> String {
        let expiry = unix_now() + self.state.limits().nonce_secs;
        format!("{expiry:x}.{}", self.nonce_mac(expiry, ip))
    }

    fn nonce_mac(&self, expiry: u64, ip: IpAddr) -> String {
        hmac_sha1(&self.nonce_key, &nonce_input(expiry, ip))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The MAC is checked in constant time (`ring::hmac::verify`), so a client cannot learn a
    /// valid nonce for an address it does not hold byte by byte from response times.
    fn nonce_ok(&self, nonce: &str, ip: IpAddr) -> bool {
        let Some((expiry, mac)) = nonce.split_once('.') else {
            return false;
        };
        let (Ok(expiry), Some(mac)) =
            (u64::from_str_radix(expiry, 16), crate::protocol::unhex(mac))
        else {
            return false;
        };
        expiry >= unix_now() && hmac_sha1_verify(&self.nonce_key, &nonce_input(expiry, ip), &mac)
    }

    fn allocate(
        &self,
        msg: &Message,
        key: ClientKey,
        link: &Link,
        from: SocketAddr,
        auth: &Auth,
        now: Instant,
    ) -> Reply {
        if let Some(existing) = self.table().by_client.get(&key).cloned() {
            // A retransmission of the Allocate that made it gets the same answer.
            if existing.txid == msg.txid && existing.username == auth.username {
                let lifetime = existing.inner().expires.saturating_duration_since(now);
                return Ok(Builder::new(stun::ALLOCATE, Class::Success, msg.txid)
                    .xor_address(attr::XOR_RELAYED_ADDRESS, existing.relayed)
                    .u32(attr::LIFETIME, lifetime.as_secs() as u32)
                    .xor_address(attr::XOR_MAPPED_ADDRESS, from));
            }
            return Err((437, "Allocation Mismatch"));
        }
        match msg.get(attr::REQUESTED_TRANSPORT) {
            None => return Err((400, "Bad Request")),
            Some(v) if v.first() != Some(&UDP_PROTOCOL) => {
                return Err((442, "Unsupported Transport Protocol"))
            }
            Some(_) => {}
        }
        if msg
            .get(attr::REQUESTED_ADDRESS_FAMILY)
            .is_some_and(|v| v.first() != Some(&0x01))
        {
            return Err((440, "Address Family not Supported"));
        }
        // Port reservations (EVEN-PORT's R bit, RESERVATION-TOKEN) exist for RTP/RTCP pairs;
        // WebRTC multiplexes RTCP and never asks. Refused the way the RFC allows.
        let reserve = msg
            .get(attr::EVEN_PORT)
            .is_some_and(|v| v.first().is_some_and(|b| b & 0x80 != 0));
        if reserve || msg.has(attr::RESERVATION_TOKEN) {
            return Err((508, "Insufficient Capacity"));
        }
        let limits = self.state.limits();
        let refuse = |code, reason| {
            bump(&self.state.metrics.turn_allocations_refused);
            Err((code, reason))
        };
        let of_seat = self
            .table()
            .by_client
            .values()
            .filter(|a| a.seat == auth.seat)
            .count() as u64;
        if of_seat >= limits.allocations_per_seat {
            return refuse(486, "Allocation Quota Reached");
        }
        let address = AddrKey::of(from.ip());
        let counted = self.state.limits_apply_to(from.ip());
        let of_address = if counted {
            self.table()
                .by_client
                .values()
                .filter(|a| AddrKey::of(a.client) == address)
                .count()
        } else {
            0
        };
        if of_address as u64 >= limits.ip_allocations {
            return refuse(486, "Allocation Quota Reached");
        }
        let arena = &self.state.budget.allocations;
        let limit = if of_address < RESERVED_PER_ADDRESS {
            arena.capacity()
        } else {
            arena.capacity() - arena.capacity() / 4
        };
        if !self.state.budget.heap_has_room() || !arena.try_acquire_within(1, limit) {
            return refuse(508, "Insufficient Capacity");
        }
        let even = msg.has(attr::EVEN_PORT);
        let Some(socket) = self.bind_relay_port(even) else {
            self.state.budget.allocations.release(1);
            return refuse(508, "Insufficient Capacity");
        };
        let port = socket.local_addr().map_or(0, |a| a.port());
        let ip = self.relayed_ip(from);
        let relayed = SocketAddr::new(ip, port);
        let lifetime = requested_lifetime(msg, limits.lifetime_max_secs);
        let seat_bucket = self
            .table()
            .seat_buckets
            .entry(auth.seat)
            .or_insert_with(|| {
                let rate = Rate::kbit_per_sec(limits.seat_kbit_per_sec);
                Arc::new(Mutex::new(Bucket::full(rate, now)))
            })
            .clone();
        let allocation = Arc::new(Allocation {
            link: link.clone(),
            client: from.ip(),
            seat_bucket,
            total_bucket: self.total_bucket.clone(),
            socket: Arc::new(socket),
            relayed,
            username: auth.username.clone(),
            seat: auth.seat,
            txid: msg.txid,
            inner: Mutex::new(Inner {
                expires: now + Duration::from_secs(lifetime),
                permissions: Vec::new(),
                channels: Vec::new(),
                bucket: Bucket::full(Rate::kbit_per_sec(limits.allocation_kbit_per_sec), now),
            }),
            task: Mutex::new(None),
            state: self.state.clone(),
        });
        let task = tokio::spawn(peer_to_client(
            allocation.clone(),
            self.state.clone(),
            self.own.clone(),
        ));
        *allocation.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
        {
            let mut table = self.table();
            table.relay_ports.insert(port);
            table.by_client.insert(key, allocation);
        }
        bump(&self.state.metrics.turn_allocations);
        log::debug!("turn: seat {} allocated {relayed} for {from}", auth.seat);
        Ok(Builder::new(stun::ALLOCATE, Class::Success, msg.txid)
            .xor_address(attr::XOR_RELAYED_ADDRESS, relayed)
            .u32(attr::LIFETIME, lifetime as u32)
            .xor_address(attr::XOR_MAPPED_ADDRESS, from))
    }

    /// A UDP socket on a free port of the range, tried from a random point.
    fn bind_relay_port(&self, even: bool) -> Option<UdpSocket> {
        let (lo, hi) = self.state.config.relay_ports;
        let span = u32::from(hi - lo) + 1;
        let mut seed = [0u8; 4];
        let _ = getrandom::fill(&mut seed);
        let start = u32::from_le_bytes(seed) % span;
        for i in 0..span.min(64) {
            let port = lo + ((start + i) % span) as u16;
            if even && port % 2 == 1 {
                continue;
            }
            let Ok(socket) = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)) else {
                continue;
            };
            if socket.set_nonblocking(true).is_err() {
                continue;
            }
            if let Ok(socket) = UdpSocket::from_std(socket) {
                return Some(socket);
            }
        }
        None
    }

    /// The address peers should send to: `--public-ip`, else the local address the client
    /// reached (for UDP, the one the kernel would answer it from).
    fn relayed_ip(&self, from: SocketAddr) -> IpAddr {
        if let Some(ip) = self.state.config.public_ip {
            return ip;
        }
        let probe = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
            .and_then(|s| s.connect(from).map(|()| s))
            .and_then(|s| s.local_addr());
        probe.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip())
    }

    fn refresh(&self, msg: &Message, key: ClientKey, auth: &Auth, now: Instant) -> Reply {
        let allocation = self.owned(key, auth)?;
        let lifetime = match msg.u32(attr::LIFETIME) {
            Some(0) => 0,
            _ => requested_lifetime(msg, self.state.limits().lifetime_max_secs),
        };
        if lifetime == 0 {
            self.remove(key);
        } else {
            allocation.inner().expires = now + Duration::from_secs(lifetime);
        }
        Ok(Builder::new(stun::REFRESH, Class::Success, msg.txid)
            .u32(attr::LIFETIME, lifetime as u32))
    }

    fn create_permission(&self, msg: &Message, key: ClientKey, auth: &Auth, now: Instant) -> Reply {
        let allocation = self.owned(key, auth)?;
        let peers = msg.xor_addresses(attr::XOR_PEER_ADDRESS);
        if peers.is_empty() {
            return Err((400, "Bad Request"));
        }
        for peer in &peers {
            if !peer.is_ipv4() {
                return Err((443, "Peer Address Family Mismatch"));
            }
            if !self.peer_ip_allowed(peer.ip()) {
                return Err((403, "Forbidden"));
            }
        }
        let cap = self.state.limits().permissions_per_allocation as usize;
        let mut inner = allocation.inner();
        inner.permissions.retain(|(_, until)| *until > now);
        for peer in peers {
            if !permit(&mut inner.permissions, peer.ip(), now, cap) {
                return Err((508, "Insufficient Capacity"));
            }
        }
        Ok(Builder::new(
            stun::CREATE_PERMISSION,
            Class::Success,
            msg.txid,
        ))
    }

    fn channel_bind(&self, msg: &Message, key: ClientKey, auth: &Auth, now: Instant) -> Reply {
        let allocation = self.owned(key, auth)?;
        let (Some(number), Some(peer)) = (
            msg.get(attr::CHANNEL_NUMBER)
                .and_then(|v| Some(u16::from_be_bytes([*v.first()?, *v.get(1)?]))),
            msg.xor_address(attr::XOR_PEER_ADDRESS),
        ) else {
            return Err((400, "Bad Request"));
        };
        if !stun::CHANNELS.contains(&number) {
            return Err((400, "Bad Request"));
        }
        if !peer.is_ipv4() {
            return Err((443, "Peer Address Family Mismatch"));
        }
        if !self.peer_ip_allowed(peer.ip()) {
            return Err((403, "Forbidden"));
        }
        let limits = self.state.limits();
        let mut inner = allocation.inner();
        inner.channels.retain(|(_, _, until)| *until > now);
        let same = inner
            .channels
            .iter()
            .position(|(n, p, _)| *n == number && *p == peer);
        let clash = inner
            .channels
            .iter()
            .any(|(n, p, _)| (*n == number) != (*p == peer));
        if clash {
            return Err((400, "Bad Request"));
        }
        match same {
            Some(i) => inner.channels[i].2 = now + CHANNEL_LIFETIME,
            None if inner.channels.len() < limits.channels_per_allocation as usize => {
                inner.channels.push((number, peer, now + CHANNEL_LIFETIME))
            }
            None => return Err((508, "Insufficient Capacity")),
        }
        // A channel binding installs or refreshes the permission for its peer (§12.2).
        inner.permissions.retain(|(_, until)| *until > now);
        let cap = limits.permissions_per_allocation as usize;
        if !permit(&mut inner.permissions, peer.ip(), now, cap) {
            return Err((508, "Insufficient Capacity"));
        }
        Ok(Builder::new(stun::CHANNEL_BIND, Class::Success, msg.txid))
    }

    /// The client's allocation, made with this same username (441 otherwise; 437 if none).
    fn owned(&self, key: ClientKey, auth: &Auth) -> Result<Arc<Allocation>, (u16, &'static str)> {
        let allocation = self
            .table()
            .by_client
            .get(&key)
            .cloned()
            .ok_or((437, "Allocation Mismatch"))?;
        if allocation.username != auth.username {
            return Err((441, "Wrong Credentials"));
        }
        Ok(allocation)
    }

    fn send_indication(&self, key: ClientKey, msg: &Message, now: Instant) {
        let (Some(peer), Some(data)) =
            (msg.xor_address(attr::XOR_PEER_ADDRESS), msg.get(attr::DATA))
        else {
            return;
        };
        self.to_peer(key, data, now, |_| Some(peer));
    }

    fn channel_data_from_client(&self, key: ClientKey, channel: u16, data: &[u8], now: Instant) {
        self.to_peer(key, data, now, |allocation| {
            allocation
                .inner()
                .channels
                .iter()
                .find(|(n, _, until)| *n == channel && *until > now)
                .map(|(_, p, _)| *p)
        });
    }

    /// Client to peer (`peer_of` names the peer, from the message or the channel): only with a
    /// permission, to an allowed peer, within the bandwidth. One look at the table per packet.
    fn to_peer(
        &self,
        key: ClientKey,
        data: &[u8],
        now: Instant,
        peer_of: impl FnOnce(&Allocation) -> Option<SocketAddr>,
    ) {
        let (allocation, peer, allowed) = {
            let table = self.table();
            let Some(allocation) = table.by_client.get(&key).cloned() else {
                return;
            };
            let Some(peer) = peer_of(&allocation) else {
                return;
            };
            let allowed = peer_allowed(&self.state, &self.own, &table.relay_ports, peer);
            (allocation, peer, allowed)
        };
        let metrics = &self.state.metrics;
        if !allowed || !allocation.permitted(peer.ip(), now) || !allocation.spend(data.len(), now) {
            bump(&metrics.turn_packets_dropped);
            return;
        }
        if allocation.socket.try_send_to(data, peer).is_ok() {
            bump(&metrics.turn_relayed_packets);
            metrics
                .turn_relayed_bytes
                .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether a permission may name `ip`: a public address, an allowed network, or this host
    /// (then only our own relayed ports are reachable, checked per packet).
    fn peer_ip_allowed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        in_networks(ip, &self.state.config.relay_allow) || self.own.contains(&ip) || is_public(ip)
    }

    fn remove(&self, key: ClientKey) {
        let gone = {
            let mut table = self.table();
            let gone = table.by_client.remove(&key);
            if let Some(a) = &gone {
                table.relay_ports.remove(&a.relayed.port());
            }
            gone
        };
        if let Some(allocation) = gone {
            allocation.close();
        }
    }

    /// Every second: ends allocations past their lifetime or whose seat has gone.
    async fn housekeeping(self: Arc<Relay>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.state.stopped() => break,
            }
            let now = Instant::now();
            let seats: HashSet<SeatId> = {
                if self.table().by_client.is_empty() {
                    let rate = self.unauthenticated_rate();
                    lock(&self.unauthenticated).retain(|_, b| !b.is_full(rate, now));
                    continue;
                }
                self.state.rooms().seat_ids().collect()
            };
            let ended: Vec<ClientKey> = self
                .table()
                .by_client
                .iter()
                .filter(|(_, a)| a.inner().expires <= now || !seats.contains(&a.seat))
                .map(|(k, _)| *k)
                .collect();
            for key in ended {
                self.remove(key);
            }
            self.table()
                .seat_buckets
                .retain(|_, bucket| Arc::strong_count(bucket) > 1);
            let rate = self.unauthenticated_rate();
            lock(&self.unauthenticated).retain(|_, b| !b.is_full(rate, now));
        }
        let all: Vec<ClientKey> = self.table().by_client.keys().copied().collect();
        for key in all {
            self.remove(key);
        }
    }

    fn unauthenticated_rate(&self) -> Rate {
        let limits = self.state.limits();
        Rate {
            burst: limits.stun_burst as f64,
            per_sec: limits.stun_per_sec as f64,
        }
    }

    /// Whether `from` may get one more answer to a request without a valid credential.
    fn unauthenticated_answer_allowed(&self, from: IpAddr, now: Instant) -> bool {
        if !self.state.limits_apply_to(from) {
            return true;
        }
        let rate = self.unauthenticated_rate();
        let mut map = lock(&self.unauthenticated);
        let key = AddrKey::of(from);
        if !map.contains_key(&key) && map.len() >= self.state.limits().tracked_addresses as usize {
            return false;
        }
        let allowed = map
            .entry(key)
            .or_insert_with(|| Bucket::full(rate, now))
            .take(rate, now);
        if !allowed {
            bump(&self.state.metrics.stun_answers_limited);
        }
        allowed
    }

    /// How many allocations are held (for tests and the log).
    pub fn allocations(&self) -> usize {
        self.table().by_client.len()
    }
}

struct Auth {
    username: String,
    seat: SeatId,
    key: [u8; 16],
}

type Reply = Result<Builder, (u16, &'static str)>;

fn error(msg: &Message, code: u16, reason: &str, key: Option<&[u8]>, fingerprint: bool) -> Vec<u8> {
    Builder::new(msg.method, Class::Error, msg.txid)
        .error(code, reason)
        .finish(key, fingerprint)
}

/// Installs or refreshes the permission for `ip`; false if that would pass `cap`.
fn permit(permissions: &mut Vec<(IpAddr, Instant)>, ip: IpAddr, now: Instant, cap: usize) -> bool {
    let ip = ip.to_canonical();
    if let Some(entry) = permissions.iter_mut().find(|(p, _)| *p == ip) {
        entry.1 = now + PERMISSION_LIFETIME;
        return true;
    }
    if permissions.len() >= cap {
        return false;
    }
    permissions.push((ip, now + PERMISSION_LIFETIME));
    true
}

fn requested_lifetime(msg: &Message, max: u64) -> u64 {
    msg.u32(attr::LIFETIME)
        .map_or(DEFAULT_LIFETIME, u64::from)
        .clamp(DEFAULT_LIFETIME.min(max), max)
}

/// What a nonce's MAC covers: its expiry and the client's address.
fn nonce_input(expiry: u64, ip: IpAddr) -> Vec<u8> {
    let mut input = expiry.to_be_bytes().to_vec();
    match ip.to_canonical() {
        IpAddr::V4(v4) => input.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => input.extend_from_slice(&v6.octets()),
    }
    input
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The IANA special-purpose address registries' blocks that are not globally reachable, or that
/// reach somewhere else than their face says (6to4 and NAT64 prefixes embed an IPv4 address that
/// may be private), plus multicast and the reserved 240/4: no relay sends there.
/// <https://www.iana.org/assignments/iana-ipv4-special-registry>,
/// <https://www.iana.org/assignments/iana-ipv6-special-registry>.
const NOT_PUBLIC_V4: [([u8; 4], u8); 17] = [
    ([0, 0, 0, 0], 8),       // "this network"
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared address space (CGNAT)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 31, 196, 0], 24), // AS112-v4 (anycast DNS sinks)
    ([192, 52, 193, 0], 24), // AMT
    ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // private
    ([192, 175, 48, 0], 24), // direct delegation AS112
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 3),     // multicast 224/4, reserved 240/4 and broadcast
];

const NOT_PUBLIC_V6: [(u128, u8); 14] = [
    (0, 128),                                        // unspecified
    (1, 128),                                        // loopback
    (0xffff_0000_0000, 96),                          // IPv4-mapped (checked as IPv4 first)
    (0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96), // NAT64
    (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48), // local-use NAT64
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // discard-only
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23), // IETF protocol assignments
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // documentation
    (0x2002_0000_0000_0000_0000_0000_0000_0000, 16), // 6to4
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // documentation
    (0x5f00_0000_0000_0000_0000_0000_0000_0000, 16), // segment routing SIDs
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7),  // unique local
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // link-local
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8),  // multicast
];

/// Somewhere on the internet: in none of the special-purpose blocks above.
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            !NOT_PUBLIC_V4.iter().any(|(net, len)| {
                let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                bits & mask == u32::from_be_bytes(*net) & mask
            })
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            !NOT_PUBLIC_V6.iter().any(|(net, len)| {
                let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
                bits & mask == net & mask
            })
        }
    }
}

/// Whether a packet may go to (or come from) `peer`: a public address, an allowed network, or
/// (on this host itself) one of our live relayed ports.
fn peer_allowed(
    state: &State,
    own: &HashSet<IpAddr>,
    relay_ports: &HashSet<u16>,
    peer: SocketAddr,
) -> bool {
    let ip = peer.ip().to_canonical();
    if in_networks(ip, &state.config.relay_allow) {
        return true;
    }
    if own.contains(&ip) || ip.is_unspecified() {
        return relay_ports.contains(&peer.port());
    }
    is_public(ip)
}

/// Peer to client: datagrams on the relayed port from permitted peers go to the client as
/// ChannelData (when a channel is bound to that peer) or a Data indication.
async fn peer_to_client(allocation: Arc<Allocation>, state: Arc<State>, own: HashSet<IpAddr>) {
    let mut buf = vec![0u8; MAX_PACKET];
    let (lo, hi) = state.config.relay_ports;
    loop {
        let Ok((n, from)) = allocation.socket.recv_from(&mut buf).await else {
            continue;
        };
        let now = Instant::now();
        let data = &buf[..n];
        // From this host itself, only another relayed port may speak (relay to relay).
        let ip = from.ip().to_canonical();
        let own_ok = !own.contains(&ip)
            || in_networks(ip, &state.config.relay_allow)
            || (lo..=hi).contains(&from.port());
        if !own_ok || !allocation.permitted(from.ip(), now) || !allocation.spend(n, now) {
            bump(&state.metrics.turn_packets_dropped);
            continue;
        }
        let channel = allocation
            .inner()
            .channels
            .iter()
            .find(|(_, p, until)| *p == from && *until > now)
            .map(|(c, _, _)| *c);
        let packet = match channel {
            Some(c) => stun::channel_data(c, data, allocation.link.is_stream()),
            None => {
                let mut txid = [0u8; 12];
                let _ = getrandom::fill(&mut txid);
                Builder::new(stun::DATA, Class::Indication, txid)
                    .xor_address(attr::XOR_PEER_ADDRESS, from)
                    .attr(attr::DATA, data)
                    .finish(None, false)
            }
        };
        if allocation.link.send(packet) {
            bump(&state.metrics.turn_relayed_packets);
            state
                .metrics
                .turn_relayed_bytes
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        } else {
            bump(&state.metrics.turn_packets_dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_internet_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.20",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            // The rest of the IANA special-purpose tables (issue 13.4).
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "192.88.99.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "240.0.0.1",
            "192.31.196.1",
            "192.175.48.6",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::1",
            "100::1",
            "2001:db8::1",
            "2001::1",
            "2002:c0a8:0101::1",
            "3fff::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "203.1.113.5",
            "2001:4860::8888",
            "::ffff:1.1.1.1",
            "198.20.0.1",
            "192.0.3.1",
            "223.255.255.1",
            "2a00:1450::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
