//! The STUN/TURN server's sockets and tasks: two readers on the UDP port, one task per TCP or
//! TLS client, one per allocation reading its relayed port, and a housekeeping every second.
//! Binding for anyone; Allocate, Refresh, CreatePermission, ChannelBind, Send/Data and
//! ChannelData for holders of a credential this process issued to a live seat. Clients reach it
//! over UDP or TCP on one port (`--stun-listen`, 3478); relayed addresses are UDP ports from
//! `--relay-ports`.
//!
//! What to answer and what to relay is decided by `auth` (the credential, the nonce, the rate of
//! unauthenticated answers) and `allocations` (every rule of the table, the peer rule of
//! `peers` included); this file reads, applies their decisions, writes and counts. Safety, in
//! the order a packet meets it:
//! - an allocation is admitted only against the `turn` arena and the seat's quota, like every
//!   other thing a client can make the server hold;
//! - a peer must be a public address, an allowed network (`--relay-allow`), or another of our
//!   own relayed addresses (relay to relay) - never this host's loopback, LAN or own services;
//! - each allocation has a bandwidth bucket, and caps on its permissions and channels;
//! - allocations end with their lifetime, or within a second of their seat going.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::allocations::{Allocations, Caps, ClientKey, NewAllocation, Refusal, Target, Verdict};
use super::auth::{Answer, AnswerRate, Auth, Credential};
use super::codec::{self as stun, attr, Builder, Class, Message};
use super::peers::PeerRule;
use super::TurnContext;
use crate::admission::budget::Permit;
use crate::admission::guard::{Open, TurnStreamSlot};
use crate::core::bucket::Rate;
use crate::core::ids::SeatId;
use crate::ops::metrics::bump;

pub use super::auth::REALM;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
/// Largest packet relayed: an Ethernet MTU's worth plus headroom; WebRTC stays under 1,300.
const MAX_PACKET: usize = 1600;
const UDP_PROTOCOL: u8 = 17;

/// The bound sockets, made before serving so a taken port is reported at start.
pub struct Sockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    /// TURN over TLS (`turns:`), on its own port with the HTTPS certificate.
    pub tls: Option<(TcpListener, Arc<crate::ops::tls::Tls>)>,
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

/// What the server keeps of an allocation beside the table's rules: the relayed socket (client
/// to peer goes out of it), the task reading it, and the allocation's place in the arena.
struct Io {
    socket: Arc<UdpSocket>,
    task: AbortHandle,
    _place: Permit,
}

impl Io {
    /// Ends the allocation's task; its place in the arena goes back with `self`.
    fn close(self) {
        self.task.abort();
    }
}

/// The relay: the allocation table, the credential check, and what they are checked against.
pub struct Relay {
    context: TurnContext,
    auth: Auth,
    table: Mutex<Allocations<Io>>,
    /// Answers to requests that carry no valid credential, per source address. Bounded by
    /// `rates.tracked_addresses`, swept by the housekeeping.
    unauthenticated: Mutex<AnswerRate>,
    next_tcp: AtomicU64,
}

impl Relay {
    /// Starts serving on `sockets` with credentials made from `secret`. `context` is what the
    /// relay sees of the rest of the program (the shared state converts into one).
    pub fn start(context: impl Into<TurnContext>, sockets: Sockets, secret: &str) -> Arc<Relay> {
        let context: TurnContext = context.into();
        let mut nonce_key = [0u8; 32];
        getrandom::fill(&mut nonce_key).expect("the OS random source is available");
        // This host's addresses (interfaces, `--public-ip`, loopback): peers there are
        // reachable only on a port that is one of our live relayed addresses.
        let mut own: HashSet<IpAddr> = crate::ops::machine::local_addresses().into_iter().collect();
        own.extend(context.public_ip);
        own.insert(IpAddr::V4(Ipv4Addr::LOCALHOST));
        own.insert(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST));
        let peers = PeerRule::new(own, context.relay_allow.clone());
        let limits = &context.limits;
        let caps = Caps::of(limits, context.budget.allocations.capacity());
        let answers = Rate {
            burst: limits.stun_burst as f64,
            per_sec: limits.stun_per_sec as f64,
        };
        let relay = Arc::new(Relay {
            auth: Auth::new(secret.as_bytes(), nonce_key, limits.nonce_secs),
            table: Mutex::new(Allocations::new(caps, peers, Instant::now())),
            unauthenticated: Mutex::new(AnswerRate::new(
                answers,
                limits.tracked_addresses as usize,
            )),
            next_tcp: AtomicU64::new(1),
            context,
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

    fn table(&self) -> MutexGuard<'_, Allocations<Io>> {
        lock(&self.table)
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
                () = self.context.stopped() => return,
            };
            let link = Link::Udp(socket.clone(), from);
            if let Some(reply) = self.handle(&buf[..n], ClientKey::Udp(from), &link, from) {
                link.send(reply);
            }
        }
    }

    /// TURN over TCP, or over TLS when `tls` is given (the handshake gets as long as an HTTP
    /// client's headers).
    async fn serve_tcp(
        self: Arc<Relay>,
        listener: TcpListener,
        tls: Option<Arc<crate::ops::tls::Tls>>,
    ) {
        loop {
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(r) => r,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = self.context.stopped() => return,
            };
            let context = &self.context;
            let metrics = context.metrics();
            let now = Instant::now();
            let slot = if context.limits_apply_to(peer.ip()) {
                if context.guard.connection(peer.ip(), now).is_err() {
                    bump(&metrics.connections_refused);
                    continue;
                }
                match context.guard.open(Open::TurnStream, peer.ip(), now) {
                    Ok(slot) => Some(slot),
                    Err(_) => {
                        bump(&metrics.turn_streams_refused);
                        continue;
                    }
                }
            } else {
                None
            };
            // Their own arena: TURN connections can never take the WebSockets' sockets.
            let Some(permit) = Permit::acquire(&context.budget, |b| &b.turn_streams) else {
                bump(&metrics.turn_streams_refused);
                continue;
            };
            let permit = (permit, slot);
            let _ = stream.set_nodelay(true);
            let id = self.next_tcp.fetch_add(1, Ordering::Relaxed);
            let Some(tls) = &tls else {
                tokio::spawn(self.clone().serve_stream(stream, peer, id, permit));
                continue;
            };
            let (relay, acceptor) = (self.clone(), tls.acceptor());
            let limit = Duration::from_secs(context.limits.header_timeout_secs);
            tokio::spawn(async move {
                match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => relay.serve_stream(stream, peer, id, permit).await,
                    _ => bump(&relay.context.metrics().tls_handshakes_failed),
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
        let limits = &self.context.limits;
        // A client that has not allocated within `timers.join_timeout_secs` of connecting is
        // closed, however it trickles (a browser allocates within a round trip or two).
        let allocate_by =
            tokio::time::Instant::now() + Duration::from_secs(limits.join_timeout_secs);
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
            let has_allocation = self.table().has(key);
            if allocated && !has_allocation {
                break;
            }
            allocated |= has_allocation;
            let until = if allocated {
                tokio::time::Instant::now() + Duration::from_secs(limits.lifetime_max_secs)
            } else {
                allocate_by
            };
            let read = tokio::select! {
                r = tokio::time::timeout_at(until, reader.read(&mut buf[have..])) => r,
                // The housekeeping may end the allocation (expiry, its seat gone) while the
                // client is silent: look again each second (a read is cancel-safe), so the
                // connection and its stream place go within a second of it.
                () = tokio::time::sleep(Duration::from_secs(1)), if allocated => continue,
                () = self.context.stopped() => break,
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
        self: &Arc<Relay>,
        packet: &[u8],
        key: ClientKey,
        link: &Link,
        from: SocketAddr,
    ) -> Option<Vec<u8>> {
        let now = Instant::now();
        if let Some((channel, data)) = stun::parse_channel_data(packet) {
            self.to_peer(key, Target::Channel(channel), data, now);
            return None;
        }
        let msg = Message::parse(packet)?;
        let fingerprint = msg.has(attr::FINGERPRINT);
        match msg.class {
            Class::Indication if msg.method == stun::SEND => {
                if let (Some(peer), Some(data)) =
                    (msg.xor_address(attr::XOR_PEER_ADDRESS), msg.get(attr::DATA))
                {
                    self.to_peer(key, Target::Peer(peer), data, now);
                }
                return None;
            }
            Class::Request => {}
            _ => return None,
        }
        let metrics = self.context.metrics();
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
            bump(&metrics.stun_bindings);
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
            return Some(error(&msg, Refusal::BAD_REQUEST, None, fingerprint));
        }
        let now_unix = unix_now();
        let seats = &self.context.seats;
        let credential = match self
            .auth
            .check(&msg, from.ip(), now_unix, |seat| seats.is_seated(seat))
        {
            Ok(credential) => credential,
            Err(refused) => {
                bump(&metrics.turn_auth_failures);
                if !unauthenticated(self) {
                    return None;
                }
                return Some(self.auth.refusal(&msg, refused, from.ip(), now_unix));
            }
        };
        let reply = match msg.method {
            stun::ALLOCATE => self.allocate(&msg, key, link, from, &credential, now),
            stun::REFRESH => self.refresh(&msg, key, &credential, now),
            stun::CREATE_PERMISSION => {
                let peers = msg.xor_addresses(attr::XOR_PEER_ADDRESS);
                self.table()
                    .permit(key, &credential.username, &peers, now)
                    .map(|()| Builder::new(stun::CREATE_PERMISSION, Class::Success, msg.txid))
            }
            _ => {
                let number = msg
                    .get(attr::CHANNEL_NUMBER)
                    .and_then(|v| Some(u16::from_be_bytes([*v.first()?, *v.get(1)?])));
                let peer = msg.xor_address(attr::XOR_PEER_ADDRESS);
                self.table()
                    .bind_channel(key, &credential.username, number, peer, now)
                    .map(|()| Builder::new(stun::CHANNEL_BIND, Class::Success, msg.txid))
            }
        };
        let key = Some(&credential.key[..]);
        Some(match reply {
            Ok(builder) => builder.finish(key, fingerprint),
            Err(refusal) => error(&msg, refusal, key, fingerprint),
        })
    }

    fn allocate(
        self: &Arc<Relay>,
        msg: &Message,
        key: ClientKey,
        link: &Link,
        from: SocketAddr,
        credential: &Credential,
        now: Instant,
    ) -> Reply {
        let success = |relayed: SocketAddr, lifetime: u64| {
            Builder::new(stun::ALLOCATE, Class::Success, msg.txid)
                .xor_address(attr::XOR_RELAYED_ADDRESS, relayed)
                .u32(attr::LIFETIME, lifetime as u32)
                .xor_address(attr::XOR_MAPPED_ADDRESS, from)
        };
        let again = self.table().again(key, &credential.username, msg.txid, now);
        if let Some(again) = again {
            // A retransmission of the Allocate that made it gets the same answer.
            return again.map(|(relayed, lifetime)| success(relayed, lifetime));
        }
        match msg.get(attr::REQUESTED_TRANSPORT) {
            None => return Err(Refusal::BAD_REQUEST),
            Some(v) if v.first() != Some(&UDP_PROTOCOL) => {
                return Err(Refusal(442, "Unsupported Transport Protocol"))
            }
            Some(_) => {}
        }
        if msg
            .get(attr::REQUESTED_ADDRESS_FAMILY)
            .is_some_and(|v| v.first() != Some(&0x01))
        {
            return Err(Refusal(440, "Address Family not Supported"));
        }
        // Port reservations (EVEN-PORT's R bit, RESERVATION-TOKEN) exist for RTP/RTCP pairs;
        // WebRTC multiplexes RTCP and never asks. Refused the way the RFC allows.
        let reserve = msg
            .get(attr::EVEN_PORT)
            .is_some_and(|v| v.first().is_some_and(|b| b & 0x80 != 0));
        if reserve || msg.has(attr::RESERVATION_TOKEN) {
            return Err(Refusal::CAPACITY);
        }
        let context = &self.context;
        let refuse = |refusal| {
            bump(&context.metrics().turn_allocations_refused);
            Err(refusal)
        };
        let counted = context.limits_apply_to(from.ip());
        let admitted = self.table().admit(credential.seat, from.ip(), counted);
        let limit = match admitted {
            Ok(limit) => limit,
            Err(refusal) => return refuse(refusal),
        };
        if !context.budget.heap_has_room() {
            return refuse(Refusal::CAPACITY);
        }
        let Some(place) = Permit::acquire_within(&context.budget, |b| &b.allocations, limit) else {
            return refuse(Refusal::CAPACITY);
        };
        let Some(socket) = self.bind_relay_port(msg.has(attr::EVEN_PORT)) else {
            return refuse(Refusal::CAPACITY);
        };
        let socket = Arc::new(socket);
        let port = socket.local_addr().map_or(0, |a| a.port());
        let relayed = SocketAddr::new(self.relayed_ip(from), port);
        let task = tokio::spawn(
            self.clone()
                .peer_to_client(port, socket.clone(), link.clone()),
        );
        let io = Io {
            socket,
            task: task.abort_handle(),
            _place: place,
        };
        let new = NewAllocation {
            seat: credential.seat,
            username: credential.username.clone(),
            txid: msg.txid,
            client: from.ip(),
            relayed,
            lifetime: msg.u32(attr::LIFETIME),
        };
        let inserted = self.table().insert(key, new, io, now);
        let lifetime = match inserted {
            Ok(lifetime) => lifetime,
            // Another Allocate on this 5-tuple made one meanwhile.
            Err(io) => {
                io.close();
                return Err(Refusal::MISMATCH);
            }
        };
        bump(&context.metrics().turn_allocations);
        log::debug!(
            "turn: seat {} allocated {relayed} for {from}",
            credential.seat
        );
        Ok(success(relayed, lifetime))
    }

    /// A UDP socket on a free port of the range, tried from a random point.
    fn bind_relay_port(&self, even: bool) -> Option<UdpSocket> {
        let (lo, hi) = self.context.relay_ports;
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
        if let Some(ip) = self.context.public_ip {
            return ip;
        }
        let probe = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
            .and_then(|s| s.connect(from).map(|()| s))
            .and_then(|s| s.local_addr());
        probe.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip())
    }

    fn refresh(
        &self,
        msg: &Message,
        key: ClientKey,
        credential: &Credential,
        now: Instant,
    ) -> Reply {
        let requested = msg.u32(attr::LIFETIME);
        let refreshed = self
            .table()
            .refresh(key, &credential.username, requested, now);
        let (lifetime, ended) = refreshed?;
        if let Some(io) = ended {
            io.close();
        }
        Ok(Builder::new(stun::REFRESH, Class::Success, msg.txid)
            .u32(attr::LIFETIME, lifetime as u32))
    }

    /// Client to peer, as the table decides; sent out of the allocation's relayed port.
    fn to_peer(&self, key: ClientKey, target: Target, data: &[u8], now: Instant) {
        let metrics = self.context.metrics();
        let verdict = self
            .table()
            .to_peer(key, target, data.len(), now)
            .map(|(peer, io)| (peer, io.socket.clone()));
        let (peer, socket) = match verdict {
            Verdict::Unknown => return,
            Verdict::Dropped => return bump(&metrics.turn_packets_dropped),
            Verdict::Pass(pass) => pass,
        };
        if socket.try_send_to(data, peer).is_ok() {
            bump(&metrics.turn_relayed_packets);
            metrics
                .turn_relayed_bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        } else {
            // A full socket buffer drops the packet, as UDP would; it is still counted.
            bump(&metrics.turn_packets_dropped);
        }
    }

    /// Peer to client: datagrams on relayed port `port`, as the table decides, go to the
    /// client as ChannelData (when a channel is bound to that peer) or a Data indication.
    /// Runs until the allocation ends and aborts it.
    async fn peer_to_client(self: Arc<Relay>, port: u16, socket: Arc<UdpSocket>, link: Link) {
        let mut buf = vec![0u8; MAX_PACKET];
        let metrics = self.context.metrics();
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            let verdict = self.table().from_peer(port, from, n, Instant::now());
            let channel = match verdict {
                // Not in the table yet, or no longer: the abort is on its way.
                Verdict::Unknown => continue,
                Verdict::Dropped => {
                    bump(&metrics.turn_packets_dropped);
                    continue;
                }
                Verdict::Pass(channel) => channel,
            };
            let data = &buf[..n];
            let packet = match channel {
                Some(c) => stun::channel_data(c, data, link.is_stream()),
                None => {
                    let mut txid = [0u8; 12];
                    let _ = getrandom::fill(&mut txid);
                    Builder::new(stun::DATA, Class::Indication, txid)
                        .xor_address(attr::XOR_PEER_ADDRESS, from)
                        .attr(attr::DATA, data)
                        .finish(None, false)
                }
            };
            if link.send(packet) {
                bump(&metrics.turn_relayed_packets);
                metrics
                    .turn_relayed_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
            } else {
                bump(&metrics.turn_packets_dropped);
            }
        }
    }

    fn remove(&self, key: ClientKey) {
        let gone = self.table().remove(key);
        if let Some(io) = gone {
            io.close();
        }
    }

    /// Every second: ends allocations past their lifetime or whose seat has gone, and forgets
    /// unauthenticated sources whose bucket has refilled.
    async fn housekeeping(self: Arc<Relay>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.context.stopped() => break,
            }
            let now = Instant::now();
            let held = self.table().seats();
            // One look at the seat directory, outside the table's lock. An allocation made
            // meanwhile is for a seat just checked, so only seats asked about can be gone.
            let gone: HashSet<SeatId> = if held.is_empty() {
                HashSet::new()
            } else {
                let seated = self.context.seats.seated(&held);
                held.into_iter().filter(|s| !seated.contains(s)).collect()
            };
            let ended = self.table().sweep(now, |seat| gone.contains(&seat));
            for io in ended {
                io.close();
            }
            lock(&self.unauthenticated).sweep(now);
        }
        let all = self.table().drain();
        for io in all {
            io.close();
        }
    }

    /// Whether `from` may get one more answer to a request without a valid credential.
    fn unauthenticated_answer_allowed(&self, from: IpAddr, now: Instant) -> bool {
        if !self.context.limits_apply_to(from) {
            return true;
        }
        let answer = lock(&self.unauthenticated).answer(from, now);
        if answer == Answer::Limited {
            bump(&self.context.metrics().stun_answers_limited);
        }
        answer == Answer::Allowed
    }

    /// How many allocations are held (for tests and the log).
    pub fn allocations(&self) -> usize {
        self.table().len()
    }
}

type Reply = Result<Builder, Refusal>;

fn error(msg: &Message, refusal: Refusal, key: Option<&[u8]>, fingerprint: bool) -> Vec<u8> {
    Builder::new(msg.method, Class::Error, msg.txid)
        .error(refusal.0, refusal.1)
        .finish(key, fingerprint)
}

use crate::util::time::unix_now;
