//! One WebSocket: its reader (this task), its writer (a task fed by a bounded queue), the
//! heartbeat, and the translation between frames and room operations.
//!
//! Architecture invariant: a session never waits on another session. Relaying is a lookup under
//! the room lock and a non-blocking push onto the peer's [`Outbox`]; a full outbox drops *that*
//! peer (it may resume), never stalls the sender.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, Notify};
use tokio::time::{timeout, timeout_at};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame as WsFrame, Utf8Bytes};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::bucket::{Bucket, Rate};
use crate::budget::Budget;
use crate::coalesce::Coalesce;
use crate::guard::{MessageRate, SocketSlot};
use crate::inflight::{Charge, ChargedIo, TooLargeBeforeJoin};
use crate::metrics::bump;
use crate::password::PasswordHash;
use crate::protocol::{close, ClientMsg, ErrorCode, Join, SeatId, ServerMsg, Token};
use crate::rooms::{Conn, ConnId, Event, HostError, Notice, Refusal, RoomName};
use crate::state::{SocketPermit, State};

type Socket = WebSocketStream<ChargedIo<Coalesce<TokioIo<Upgraded>>>>;

/// How often one socket may set a password: a few at once, then one every 5 s (a host types
/// one; a script in a loop is what this stops).
const PASSWORD_RATE: Rate = Rate {
    burst: 3.0,
    per_sec: 0.2,
};

/// How many frames a socket's queue holds; its bytes are bounded separately.
const QUEUE_FRAMES: usize = 256;

enum Frame {
    Text(Utf8Bytes),
    Close(u16, &'static str),
}

/// The sending side of one socket's bounded outbound queue. Cheap to clone; the room map holds
/// one per seat.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Frame>,
    shared: Arc<OutboxShared>,
}

struct OutboxShared {
    queued_bytes: AtomicUsize,
    cap_bytes: usize,
    budget: Arc<Budget>,
    /// Signalled when the queue overflowed or the writer failed: the session must end.
    dead: Notify,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    fn new(budget: Arc<Budget>, cap_bytes: usize) -> (Outbox, mpsc::Receiver<Frame>) {
        let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
        let shared = Arc::new(OutboxShared {
            queued_bytes: AtomicUsize::new(0),
            cap_bytes,
            budget,
            dead: Notify::new(),
        });
        (Outbox { tx, shared }, rx)
    }

    /// Queues a text frame without waiting. False when the socket's queue or the global
    /// outbound arena is full; the socket is then dropped, as it cannot keep up.
    pub fn push(&self, text: Utf8Bytes) -> bool {
        let len = text.len();
        let s = &self.shared;
        let fits = s.queued_bytes.load(Ordering::Acquire) + len <= s.cap_bytes;
        if !fits || !s.budget.outbound.try_acquire(len as u64) {
            s.dead.notify_one();
            return false;
        }
        s.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if self.tx.try_send(Frame::Text(text)).is_err() {
            s.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            s.budget.outbound.release(len as u64);
            s.dead.notify_one();
            return false;
        }
        true
    }

    fn push_msg(&self, msg: &ServerMsg<'_>) -> bool {
        self.push(Utf8Bytes::from(msg.to_json()))
    }

    /// Sends an error, then closes with its close code if it has one.
    fn error(&self, code: ErrorCode, message: &str) {
        self.push_msg(&ServerMsg::Error { code, message });
        if let Some(close_code) = code.close_code() {
            self.close(close_code, code.as_str());
        }
    }

    /// Queues a close frame; the writer sends it and stops.
    fn close(&self, code: u16, reason: &'static str) {
        let _ = self.tx.try_send(Frame::Close(code, reason));
    }
}

impl OutboxShared {
    /// Gives back what a frame took once it is written (or thrown away).
    fn sent(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        self.budget.outbound.release(len as u64);
    }
}

/// Serializes each notice once and queues it for every recipient. Called under the room lock,
/// so that notices reach each socket in the order the room changed.
pub fn deliver_notices(notices: Vec<Notice<Outbox>>) {
    for notice in notices {
        if notice.to.is_empty() {
            continue;
        }
        let msg = match notice.event {
            Event::PeerJoined(peer) => ServerMsg::PeerJoined { peer },
            Event::PeerLeft(id) => ServerMsg::PeerLeft { id },
            Event::PeerUpdated(peer) => ServerMsg::PeerUpdated { peer },
            Event::PeerRejoined { peer, reset } => ServerMsg::PeerRejoined { peer, reset },
            Event::RoomUpdated(info) => ServerMsg::RoomUpdated {
                locked: info.locked,
                password: info.password,
            },
            Event::Chat(line) => ServerMsg::Chat(line),
        };
        let text = Utf8Bytes::from(msg.to_json());
        for outbox in notice.to {
            outbox.push(text.clone());
        }
    }
}

fn fresh_token() -> Token {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    Token(bytes)
}

/// How a session ended, which decides what happens to its seat.
enum End {
    /// `leave` or a close frame from the client: free the seat now.
    Left,
    /// The socket broke or went silent: hold the seat for the grace period.
    Lost,
    /// The server is stopping: tell the client to come back.
    Shutdown,
}

/// The seat this socket holds after a successful join.
struct Seated {
    seat: SeatId,
    name: crate::protocol::Name,
}

/// Runs one WebSocket until it ends.
pub async fn run(
    ws: Socket,
    charge: Arc<Charge>,
    room: RoomName,
    state: Arc<State>,
    permit: (SocketPermit, Option<SocketSlot>),
    ip: IpAddr,
    host: Option<String>,
) {
    let limits = state.limits().clone();
    let mut rate = MessageRate::new(&limits, Instant::now());
    let mut warned_at: Option<Instant> = None;
    let mut password_rate = Bucket::full(PASSWORD_RATE, Instant::now());
    let (outbox, rx) = Outbox::new(
        state.budget.clone(),
        (limits.outbound_per_socket_kib * 1024) as usize,
    );
    let (sink, mut stream) = ws.split();
    let writer = tokio::spawn(write_loop(
        sink,
        rx,
        outbox.shared.clone(),
        Duration::from_secs(limits.ping_secs),
        Duration::from_secs(limits.timeout_secs),
    ));
    let conn = state.next_conn_id();
    let silence = Duration::from_secs(limits.timeout_secs);
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(limits.join_timeout_secs);
    let mut seated: Option<Seated> = None;

    let end = loop {
        let next = tokio::select! {
            next = timeout_at(deadline, stream.next()) => next,
            () = outbox.shared.dead.notified() => {
                bump(&state.metrics.slow_clients_dropped);
                break End::Lost;
            }
            () = state.stopped() => break End::Shutdown,
        };
        let message = match next {
            Err(_elapsed) => {
                if seated.is_none() {
                    outbox.close(close::POLICY, "join expected");
                }
                break End::Lost;
            }
            Ok(None) => break End::Lost,
            Ok(Some(Err(e))) => {
                read_error(&e, &outbox, &state);
                break End::Lost;
            }
            Ok(Some(Ok(message))) => message,
        };
        if seated.is_some() {
            deadline = tokio::time::Instant::now() + silence;
        }
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break End::Left,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Binary(_) => {
                bump(&state.metrics.frames_rejected);
                outbox.error(ErrorCode::BadRequest, "Send text frames with JSON only.");
                if seated.is_none() {
                    outbox.close(close::POLICY, "join expected");
                    break End::Lost;
                }
                continue;
            }
        };
        // A flood is dropped here, before parsing or the room lock; the sender hears why, at
        // most once a second. Other sockets never notice.
        let now = Instant::now();
        if !rate.allow(now) {
            bump(&state.metrics.messages_dropped_rate);
            if warned_at.map_or(true, |t| now.duration_since(t) >= Duration::from_secs(1)) {
                warned_at = Some(now);
                outbox.error(ErrorCode::SlowDown, ErrorCode::SlowDown.message());
            }
            continue;
        }
        let parsed = ClientMsg::parse(&text);
        match (&seated, parsed) {
            (_, Err(why)) => {
                bump(&state.metrics.bad_requests);
                outbox.error(ErrorCode::BadRequest, &why.0);
                if seated.is_none() {
                    outbox.close(close::POLICY, "join expected");
                    break End::Lost;
                }
            }
            (None, Ok(ClientMsg::Join(join))) => {
                match join_room(&state, &room, &join, conn, &outbox, (ip, host.as_deref())).await {
                    Some(s) => {
                        charge.set_joined();
                        seated = Some(s);
                        deadline = tokio::time::Instant::now() + silence;
                    }
                    None => break End::Lost,
                }
            }
            (None, Ok(_)) => {
                bump(&state.metrics.bad_requests);
                outbox.error(ErrorCode::BadRequest, "The first message must be `join`.");
                outbox.close(close::POLICY, "join expected");
                break End::Lost;
            }
            (Some(_), Ok(ClientMsg::Join(_))) => {
                bump(&state.metrics.bad_requests);
                outbox.error(ErrorCode::BadRequest, "This socket has joined already.");
            }
            (Some(me), Ok(ClientMsg::Signal { to, data })) => {
                let target = state
                    .rooms()
                    .route(&room, me.seat, conn, to, Instant::now());
                if let Some(peer) = target {
                    let json = ServerMsg::Signal {
                        from: me.seat,
                        data,
                    }
                    .to_json();
                    let len = json.len() as u64;
                    if peer.push(Utf8Bytes::from(json)) {
                        bump(&state.metrics.messages_relayed);
                        state
                            .metrics
                            .bytes_relayed
                            .fetch_add(len, Ordering::Relaxed);
                    }
                }
            }
            (Some(me), Ok(ClientMsg::Update(update))) => {
                let mut rooms = state.rooms();
                deliver_notices(rooms.update(&room, me.seat, conn, update, Instant::now()));
            }
            (Some(_), Ok(ClientMsg::Leave)) => {
                outbox.close(close::NORMAL, "left");
                break End::Left;
            }
            (Some(me), Ok(ClientMsg::Chat { text })) => {
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let mut rooms = state.rooms();
                deliver_notices(rooms.chat(&room, me.seat, conn, &text, ts, Instant::now()));
            }
            (Some(me), Ok(ClientMsg::SetPassword { password })) => {
                let now = Instant::now();
                if !password.is_empty() && !password_rate.take(PASSWORD_RATE, now) {
                    outbox.error(ErrorCode::SlowDown, ErrorCode::SlowDown.message());
                    continue;
                }
                let hash = if password.is_empty() {
                    None
                } else {
                    // The hash is slow on purpose: off the async threads, one at a time.
                    let Ok(_turn) = state.hashing.acquire().await else {
                        continue;
                    };
                    tokio::task::spawn_blocking(move || PasswordHash::new(&password))
                        .await
                        .ok()
                };
                let set = hash.is_some();
                let mut rooms = state.rooms();
                let done = host_result(
                    rooms.set_password(&room, me.seat, conn, hash, Instant::now()),
                    &outbox,
                );
                drop(rooms);
                if done {
                    let what = if set {
                        "set a password"
                    } else {
                        "cleared the password"
                    };
                    log::info!("room {room}: host {} {what}", me.name);
                }
            }
            (Some(me), Ok(ClientMsg::Lock { locked })) => {
                let mut rooms = state.rooms();
                let done = host_result(
                    rooms.set_locked(&room, me.seat, conn, locked, Instant::now()),
                    &outbox,
                );
                drop(rooms);
                if done {
                    let what = if locked { "locked" } else { "unlocked" };
                    log::info!("room {room}: host {} {what} the room", me.name);
                }
            }
            (Some(me), Ok(ClientMsg::Remove { id })) => {
                let mut rooms = state.rooms();
                match rooms.remove(&room, me.seat, conn, id, Instant::now()) {
                    Ok(removal) => {
                        if let Some(victim) = removal.handle {
                            victim.error(ErrorCode::Removed, ErrorCode::Removed.message());
                        }
                        let removed = !removal.notices.is_empty();
                        deliver_notices(removal.notices);
                        drop(rooms);
                        if removed {
                            log::info!("room {room}: host {} removed seat {id}", me.name);
                        }
                    }
                    Err(HostError::NotHost) => {
                        drop(rooms);
                        outbox.error(ErrorCode::NotHost, ErrorCode::NotHost.message());
                    }
                }
            }
        }
    };

    if let Some(me) = &seated {
        let now = Instant::now();
        let mut rooms = state.rooms();
        match end {
            End::Left => {
                let notices = rooms.leave(&room, me.seat, conn, now);
                if !notices.is_empty() {
                    log::info!("room {room}: {} left (seat {})", me.name, me.seat);
                }
                deliver_notices(notices);
            }
            End::Lost => {
                let notices = rooms.lost(&room, me.seat, conn, now);
                if !notices.is_empty() {
                    log::info!(
                        "room {room}: {} lost connection, seat {} held for {} s",
                        me.name,
                        me.seat,
                        limits.seat_grace_secs
                    );
                }
                deliver_notices(notices);
            }
            // The process is ending; the seat goes with it.
            End::Shutdown => {}
        }
    }
    if matches!(end, End::Shutdown) {
        outbox.close(close::GOING_AWAY, "server restarting");
    }
    drop(outbox);
    // Let the writer flush what is queued (a close frame, an error), but not forever.
    let mut writer = writer;
    if timeout(Duration::from_secs(2), &mut writer).await.is_err() {
        writer.abort();
    }
    drop(permit);
}

/// Delivers a host action's notices (the caller still holds the room lock, so they stay in
/// order with other room changes), or tells a non-host it may not. True if it was done.
fn host_result(result: Result<Vec<Notice<Outbox>>, HostError>, outbox: &Outbox) -> bool {
    match result {
        Ok(notices) => {
            deliver_notices(notices);
            true
        }
        Err(HostError::NotHost) => {
            outbox.error(ErrorCode::NotHost, ErrorCode::NotHost.message());
            false
        }
    }
}

/// Tells the client what went wrong reading its frames, when it can still be told.
fn read_error(e: &WsError, outbox: &Outbox, state: &State) {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            bump(&state.metrics.frames_rejected);
            outbox.error(ErrorCode::TooLarge, ErrorCode::TooLarge.message());
        }
        WsError::Io(e) if e.get_ref().is_some_and(|e| e.is::<TooLargeBeforeJoin>()) => {
            bump(&state.metrics.frames_rejected);
            outbox.error(
                ErrorCode::TooLarge,
                "A message before join must fit in 2 KiB; join first.",
            );
        }
        // A peer that vanished without a close frame is a lost connection, not a bad frame.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {}
        WsError::Capacity(_) | WsError::Protocol(_) => {
            bump(&state.metrics.frames_rejected);
            outbox.close(1002, "protocol error");
        }
        WsError::Utf8(_) => {
            bump(&state.metrics.frames_rejected);
            outbox.close(1007, "invalid UTF-8");
        }
        _ => {}
    }
}

/// Admits a join, or tells the client why not. Returns the seat on success.
async fn join_room(
    state: &State,
    room: &RoomName,
    join: &Join,
    conn: ConnId,
    outbox: &Outbox,
    (ip, host): (IpAddr, Option<&str>),
) -> Option<Seated> {
    if state.limits_apply_to(ip) && state.guard.join(ip, Instant::now()).is_err() {
        return refuse_rate_limited(state, room, join, outbox, "joins");
    }
    // Check the password against the room's hash outside the lock: the hash is slow on purpose.
    // Wrong guesses are counted per address and room; past the limit nothing is hashed.
    let stored = state.rooms().password_of(room);
    let proven = match (stored, join.password.as_deref()) {
        (Some(hash), Some(given)) if !given.is_empty() => {
            if !state.guard.password_allowed(ip, room, Instant::now()) {
                return refuse_rate_limited(state, room, join, outbox, "wrong passwords");
            }
            let (check, given) = (hash.clone(), given.to_string());
            let Ok(_turn) = state.verifying.acquire().await else {
                return None;
            };
            // A hash of an older KDF or cost is replaced while the right password is at hand.
            let verified = tokio::task::spawn_blocking(move || {
                check
                    .verify(&given)
                    .then(|| check.needs_rehash().then(|| PasswordHash::new(&given)))
            })
            .await
            .unwrap_or(None);
            match verified {
                Some(fresh) => Some((hash, fresh)),
                None => {
                    state.guard.password_failed(ip, room, Instant::now());
                    None
                }
            }
        }
        _ => None,
    };
    let (proven, rehashed) = match proven {
        Some((hash, fresh)) => (Some(hash), fresh),
        None => (None, None),
    };
    let token = fresh_token();
    let heap_ok = state.budget.heap_has_room();
    let mut rooms = state.rooms();
    let result = rooms.join(
        room,
        join,
        Conn {
            id: conn,
            handle: outbox.clone(),
            // Removals bar the address too where per-address rules apply (not a local proxy's
            // shared loopback unless --limit-loopback).
            addr: state
                .limits_apply_to(ip)
                .then(|| crate::guard::AddrKey::of(ip)),
        },
        token,
        proven.as_ref(),
        Instant::now(),
        heap_ok,
    );
    match result {
        Ok(admitted) => {
            if let (Some(old), Some(fresh)) = (&proven, rehashed) {
                rooms.upgrade_password(room, old, fresh);
                log::info!("room {room}: password hash upgraded to the current KDF");
            }
            bump(&state.metrics.joins);
            let ice_servers = state.ice_servers_for(admitted.you, host);
            outbox.push_msg(&ServerMsg::Joined {
                you: admitted.you,
                token: admitted.token.to_hex(),
                host: admitted.host,
                room,
                peers: admitted.peers,
                ice_servers: &ice_servers,
                locked: admitted.room.locked,
                password: admitted.room.password,
                chat: admitted.chat,
                resumed: admitted.resumed,
            });
            if let Some(old) = admitted.replaced {
                old.error(ErrorCode::Replaced, ErrorCode::Replaced.message());
            }
            deliver_notices(admitted.notices);
            let seats = rooms.seat_count();
            drop(rooms);
            if admitted.resumed {
                log::info!(
                    "room {room}: {} resumed seat {} ({seats} seated in all)",
                    join.name,
                    admitted.you
                );
            } else {
                log::info!(
                    "room {room}: {} joined as seat {}{} ({seats} seated in all)",
                    join.name,
                    admitted.you,
                    if admitted.host { ", host" } else { "" }
                );
            }
            Some(Seated {
                seat: admitted.you,
                name: join.name.clone(),
            })
        }
        Err(refusal) => {
            drop(rooms);
            let code = match refusal {
                Refusal::RoomFull => {
                    bump(&state.metrics.refused_room_full);
                    ErrorCode::RoomFull
                }
                Refusal::ServerBusy => {
                    bump(&state.metrics.refused_server_busy);
                    ErrorCode::ServerBusy
                }
                Refusal::TooManyRooms => {
                    bump(&state.metrics.refused_too_many_rooms);
                    ErrorCode::TooManyRooms
                }
                Refusal::BadPassword => {
                    bump(&state.metrics.refused_bad_password);
                    ErrorCode::BadPassword
                }
                Refusal::Locked => {
                    bump(&state.metrics.refused_locked);
                    ErrorCode::Locked
                }
                Refusal::Removed => {
                    bump(&state.metrics.refused_removed);
                    ErrorCode::Removed
                }
            };
            log::info!("room {room}: {} refused: {}", join.name, code.as_str());
            outbox.error(code, code.message());
            None
        }
    }
}

fn refuse_rate_limited(
    state: &State,
    room: &RoomName,
    join: &Join,
    outbox: &Outbox,
    what: &str,
) -> Option<Seated> {
    bump(&state.metrics.refused_rate_limited);
    log::info!(
        "room {room}: {} refused: too many {what} from one address",
        join.name
    );
    outbox.error(ErrorCode::RateLimited, ErrorCode::RateLimited.message());
    None
}

/// Longest frame the writer sends. tungstenite's write buffer keeps the capacity of the largest
/// frame it ever wrote, for the socket's whole life; a message longer than this (an SDP offer is
/// 4-8 KiB) goes out as a fragmented message instead (RFC 6455 section 5.4), which browsers join.
const SEND_FRAGMENT: usize = 1024;

/// Feeds one text message to the socket, fragmented when longer than [`SEND_FRAGMENT`]; the
/// caller flushes.
async fn feed_text(
    sink: &mut futures_util::stream::SplitSink<Socket, Message>,
    text: Utf8Bytes,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    if text.len() <= SEND_FRAGMENT {
        return sink.feed(Message::Text(text)).await;
    }
    let bytes = Bytes::from(text);
    let count = bytes.len().div_ceil(SEND_FRAGMENT);
    for i in 0..count {
        let piece = bytes.slice(i * SEND_FRAGMENT..((i + 1) * SEND_FRAGMENT).min(bytes.len()));
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let frame = WsFrame::message(piece, OpCode::Data(opcode), i + 1 == count);
        sink.feed(Message::Frame(frame)).await?;
    }
    Ok(())
}

/// Most queued messages written before one flush: a busy socket's messages share write
/// system calls (and TCP segments) instead of taking one each.
const WRITE_BATCH: usize = 64;

/// Drains the outbound queue into the socket, and pings. Ends on a close frame, when the queue
/// is dropped, or when the peer stops taking bytes for `stall` (then the session is told).
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<Socket, Message>,
    rx: mpsc::Receiver<Frame>,
    shared: Arc<OutboxShared>,
    ping_every: Duration,
    stall: Duration,
) {
    let mut queue = Queue {
        rx,
        shared,
        taken: 0,
    };
    let mut ping = tokio::time::interval(ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    // A close frame taken from the queue while batching, sent next.
    let mut pending: Option<Frame> = None;
    loop {
        let frame = if let Some(frame) = pending.take() {
            Some(frame)
        } else {
            tokio::select! {
                frame = queue.rx.recv() => frame,
                _ = ping.tick() => {
                    match timeout(stall, sink.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => continue,
                        _ => break,
                    }
                }
            }
        };
        match frame {
            Some(Frame::Text(text)) => {
                // Whatever else is already queued goes out in the same write (see Coalesce).
                // The batch's bytes stay charged to the outbound arena until it is flushed.
                let sent = timeout(stall, async {
                    let mut next = Some(text);
                    let mut fed = 0;
                    while let Some(text) = next.take() {
                        queue.taken += text.len();
                        feed_text(&mut sink, text).await?;
                        fed += 1;
                        if fed < WRITE_BATCH {
                            match queue.rx.try_recv() {
                                Ok(Frame::Text(text)) => next = Some(text),
                                Ok(close) => pending = Some(close),
                                Err(_) => {}
                            }
                        }
                    }
                    sink.flush().await
                })
                .await;
                queue.release_taken();
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
            }
            Some(Frame::Close(code, reason)) => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let _ = timeout(stall, sink.send(Message::Close(Some(frame)))).await;
                let _ = timeout(Duration::from_secs(1), sink.flush()).await;
                break;
            }
            None => {
                let _ = timeout(Duration::from_secs(1), sink.close()).await;
                break;
            }
        }
    }
    queue.shared.dead.notify_one();
}

/// The writer's end of the outbound queue. Whatever it holds goes back to the outbound arena
/// when it is dropped: when the writer ends, and also when the session aborts a writer stuck on
/// a peer that stopped reading (before this guard, those bytes leaked, and two floods of
/// non-reading sockets left the arena full for good).
struct Queue {
    rx: mpsc::Receiver<Frame>,
    shared: Arc<OutboxShared>,
    /// Bytes taken from the queue and not yet flushed to the socket.
    taken: usize,
}

impl Queue {
    fn release_taken(&mut self) {
        self.shared.sent(std::mem::take(&mut self.taken));
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.release_taken();
        // Senders fail from here on (and release their own bytes); drain what was queued.
        self.rx.close();
        while let Ok(frame) = self.rx.try_recv() {
            if let Frame::Text(text) = frame {
                self.shared.sent(text.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    /// A writer aborted while stuck on a full socket (the session gives it 2 s) drops its
    /// queue mid-batch: every byte queued or taken goes back to the outbound arena.
    #[test]
    fn an_aborted_writer_returns_its_bytes_to_the_arena() {
        let budget = Arc::new(Budget::new(&Limits::shipped()));
        let (outbox, rx) = Outbox::new(budget.clone(), 64 * 1024);
        for _ in 0..3 {
            assert!(outbox.push(Utf8Bytes::from("x".repeat(1000))));
        }
        assert_eq!(budget.outbound.used(), 3000);
        let mut queue = Queue {
            rx,
            shared: outbox.shared.clone(),
            taken: 0,
        };
        // The writer took one message and was feeding it when it was aborted.
        let Ok(Frame::Text(text)) = queue.rx.try_recv() else {
            panic!("queued");
        };
        queue.taken += text.len();
        drop(queue);
        assert_eq!(budget.outbound.used(), 0);
        assert_eq!(outbox.shared.queued_bytes.load(Ordering::Acquire), 0);
        // Later pushes fail and charge nothing.
        assert!(!outbox.push(Utf8Bytes::from("late")));
        assert_eq!(budget.outbound.used(), 0);
    }
}
