//! One handler per client message: what a seated socket's `signal`, `update`, `chat`,
//! `room-message`, `set-password`, `lock`, `ask-to-join`, `admit`, `deny`, `allow-recording`,
//! `remove` and `leave` do, and how a `join` is admitted (or waits as a knock). The session
//! loop (`session.rs`) reads, decodes and dispatches here; a new message is one handler here, one
//! entry in `protocol.rs` and one in `docs/PROTOCOL.md`.
//!
//! Every handler takes the room lock for microseconds and never across an `.await`; the notices
//! it gets back are queued under the lock so every socket sees room changes in order.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;

use crate::admission::guard::AddrKey;
use crate::core::bucket::{Bucket, Rate};
use crate::core::limits::Limits;
use crate::core::password::PasswordHash;
use crate::core::rooms::{Conn, ConnId, HostError, Notice, Refusal, RoomName, UpdateError};
use crate::ops::metrics::bump;
use crate::signaling::outbox::{deliver_notices, Outbox};
use crate::signaling::protocol::{
    close, ClientMsg, ErrorCode, Join, SeatId, ServerMsg, Token, Update,
};
use crate::signaling::state::State;

/// How often one socket may set a password: a few at once, then one every 5 s (a host types
/// one; a script in a loop is what this stops).
pub(super) const PASSWORD_RATE: Rate = Rate {
    burst: 3.0,
    per_sec: 0.2,
};

/// How many `room-message`s one socket may send (`rates.room_messages_*`): each goes to the
/// whole room.
pub(super) fn room_message_rate(limits: &Limits) -> Rate {
    Rate {
        burst: limits.room_messages_burst as f64,
        per_sec: limits.room_messages_per_sec as f64,
    }
}

/// The seat this socket holds after a successful join, or the knock it waits as.
pub(super) struct Seated {
    pub(super) seat: SeatId,
    /// For the log only; boxed, since a `Name` would hold its full capacity in every session.
    pub(super) name: Box<str>,
    /// Waiting for the host: only `join` (once admitted) and `leave` mean anything yet.
    pub(super) knocking: bool,
}

/// What a handler needs of its socket: the shared state, its room, its identity and its queue.
pub(super) struct Ctx {
    pub(super) state: Arc<State>,
    pub(super) room: RoomName,
    pub(super) conn: ConnId,
    pub(super) outbox: Outbox,
    /// `set-password` is rate-limited per socket (see [`PASSWORD_RATE`]).
    pub(super) password_rate: Bucket,
    /// `room-message` is rate-limited per socket (see [`room_message_rate`]).
    pub(super) room_message_rate: Bucket,
}

/// What the session does after a handler.
pub(super) enum Flow {
    Stay,
    /// The client said `leave`: free the seat now.
    Leave,
}

/// Dispatches one message from a seated socket to its handler; `read_at` is when its frame was
/// read (a relayed signal's time in the server counts from it).
pub(super) async fn seated(
    ctx: &mut Ctx,
    me: &Seated,
    msg: ClientMsg<'_>,
    read_at: Instant,
) -> Flow {
    match msg {
        ClientMsg::Join(_) => {
            bump(&ctx.state.metrics.bad_requests);
            ctx.outbox
                .error(ErrorCode::BadRequest, "This socket has joined already.");
        }
        ClientMsg::Signal { to, data } => signal(ctx, me, to, data, read_at),
        ClientMsg::Update(update) => self::update(ctx, me, update),
        ClientMsg::Chat { text } => chat(ctx, me, &text),
        ClientMsg::RoomMessage { data } => room_message(ctx, me, data),
        ClientMsg::SetPassword { password } => set_password(ctx, me, password).await,
        ClientMsg::Lock { locked } => lock(ctx, me, locked),
        ClientMsg::AskToJoin { on } => ask_to_join(ctx, me, on),
        ClientMsg::Admit { id } => admit(ctx, me, id),
        ClientMsg::Deny { id } => deny(ctx, me, id),
        ClientMsg::Remove { id } => remove(ctx, me, id),
        ClientMsg::AllowRecording { allowed } => allow_recording(ctx, me, allowed),
        ClientMsg::Leave => {
            ctx.outbox.close(close::NORMAL, "left");
            return Flow::Leave;
        }
    }
    Flow::Stay
}

/// `signal`: relay opaque data to one seat of the same room, never blocking on it.
fn signal(ctx: &Ctx, me: &Seated, to: SeatId, data: &RawValue, read_at: Instant) {
    let target = ctx
        .state
        .rooms()
        .route(&ctx.room, me.seat, ctx.conn, to, read_at);
    let Some(peer) = target else {
        return;
    };
    let json = ServerMsg::Signal {
        from: me.seat,
        data,
    }
    .to_json();
    let len = json.len() as u64;
    if peer.push_signal(Utf8Bytes::from(json), read_at) {
        let metrics = &ctx.state.metrics;
        bump(&metrics.messages_relayed);
        metrics.bytes_relayed.fetch_add(len, Ordering::Relaxed);
    }
}

/// `update`: my media state, my hand or my recording changed; the others hear it (and, for
/// recording, I hear it too: that is my go-ahead).
fn update(ctx: &Ctx, me: &Seated, update: Update) {
    let mut rooms = ctx.state.rooms();
    match rooms.update(&ctx.room, me.seat, ctx.conn, update, Instant::now()) {
        Ok(notices) => deliver_notices(notices),
        Err(UpdateError::RecordingOff) => {
            drop(rooms);
            ctx.outbox
                .error(ErrorCode::RecordingOff, ErrorCode::RecordingOff.message());
            return;
        }
    }
    drop(rooms);
    if let Some(recording) = update.recording {
        let what = if recording { "started" } else { "stopped" };
        log::info!("room {}: {} {what} recording", ctx.room, me.name);
    }
}

/// `chat`: a line for the room, kept for late joiners.
fn chat(ctx: &Ctx, me: &Seated, text: &str) {
    let ts = crate::util::time::unix_millis();
    let mut rooms = ctx.state.rooms();
    deliver_notices(rooms.chat(&ctx.room, me.seat, ctx.conn, text, ts, Instant::now()));
}

/// `room-message`: opaque data for everyone in the room, the sender included (as its
/// confirmation), within the socket's rate and the size cap; never kept. The server never
/// parses `data`, so reactions and later client-only features need no server change.
fn room_message(ctx: &mut Ctx, me: &Seated, data: &RawValue) {
    let limits = ctx.state.limits();
    let now = Instant::now();
    let metrics = &ctx.state.metrics;
    if data.get().len() as u64 > limits.room_message_bytes {
        bump(&metrics.room_messages_dropped);
        ctx.outbox.error(
            ErrorCode::BadRequest,
            &format!(
                "`room-message` data is longer than {} bytes",
                limits.room_message_bytes
            ),
        );
        return;
    }
    if !ctx.room_message_rate.take(room_message_rate(limits), now) {
        bump(&metrics.room_messages_dropped);
        ctx.outbox
            .error(ErrorCode::SlowDown, ErrorCode::SlowDown.message());
        return;
    }
    let mut rooms = ctx.state.rooms();
    let Some(to) = rooms.room_handles(&ctx.room, me.seat, ctx.conn) else {
        return;
    };
    let text = Utf8Bytes::from(
        ServerMsg::RoomMessage {
            from: me.seat,
            data,
        }
        .to_json(),
    );
    // Under the lock, so a reaction never overtakes the peer-joined or peer-left before it.
    for outbox in to {
        outbox.push(text.clone());
    }
    drop(rooms);
    bump(&metrics.room_messages);
}

/// `ask-to-join` (host): newcomers knock; off lets in those waiting.
fn ask_to_join(ctx: &Ctx, me: &Seated, on: bool) {
    let mut rooms = ctx.state.rooms();
    let done = host_result(
        rooms.set_ask(&ctx.room, me.seat, ctx.conn, on, Instant::now()),
        &ctx.outbox,
    );
    drop(rooms);
    if done {
        let what = if on { "turned on" } else { "turned off" };
        log::info!("room {}: host {} {what} ask to join", ctx.room, me.name);
    }
}

/// `admit` (host): the knock's socket is told `admitted` and joins; the place is kept for it.
fn admit(ctx: &Ctx, me: &Seated, id: SeatId) {
    let mut rooms = ctx.state.rooms();
    let result = rooms.admit(&ctx.room, me.seat, ctx.conn, id, Instant::now());
    let admitted = matches!(&result, Ok(notices) if !notices.is_empty());
    let done = host_result(result, &ctx.outbox);
    drop(rooms);
    if done && admitted {
        bump(&ctx.state.metrics.knocks_admitted);
        log::info!("room {}: host {} admitted knock {id}", ctx.room, me.name);
    }
}

/// `deny` (host): the knock's socket is told `denied` and closed; it may knock again later.
fn deny(ctx: &Ctx, me: &Seated, id: SeatId) {
    let mut rooms = ctx.state.rooms();
    match rooms.deny(&ctx.room, me.seat, ctx.conn, id, Instant::now()) {
        Ok(denied) => {
            if let Some(knocker) = &denied.handle {
                knocker.error(ErrorCode::Denied, ErrorCode::Denied.message());
            }
            let done = !denied.notices.is_empty();
            deliver_notices(denied.notices);
            drop(rooms);
            if done {
                bump(&ctx.state.metrics.knocks_denied);
                log::info!("room {}: host {} denied knock {id}", ctx.room, me.name);
            }
        }
        Err(e) => {
            drop(rooms);
            host_error(e, &ctx.outbox);
        }
    }
}

/// `set-password` (host): hashed off the async threads, one hash at a time in the process, and
/// a few per socket (`slow_down` past it, before any hashing).
async fn set_password(ctx: &mut Ctx, me: &Seated, password: String) {
    let now = Instant::now();
    if !password.is_empty() && !ctx.password_rate.take(PASSWORD_RATE, now) {
        ctx.outbox
            .error(ErrorCode::SlowDown, ErrorCode::SlowDown.message());
        return;
    }
    let hash = if password.is_empty() {
        None
    } else {
        let Ok(_turn) = ctx.state.hashing.acquire().await else {
            return;
        };
        tokio::task::spawn_blocking(move || PasswordHash::new(&password))
            .await
            .ok()
    };
    let set = hash.is_some();
    let mut rooms = ctx.state.rooms();
    let done = host_result(
        rooms.set_password(&ctx.room, me.seat, ctx.conn, hash, Instant::now()),
        &ctx.outbox,
    );
    drop(rooms);
    if done {
        let what = if set {
            "set a password"
        } else {
            "cleared the password"
        };
        log::info!("room {}: host {} {what}", ctx.room, me.name);
    }
}

/// `lock` (host): a locked room admits no new seats.
fn lock(ctx: &Ctx, me: &Seated, locked: bool) {
    let mut rooms = ctx.state.rooms();
    let done = host_result(
        rooms.set_locked(&ctx.room, me.seat, ctx.conn, locked, Instant::now()),
        &ctx.outbox,
    );
    drop(rooms);
    if done {
        let what = if locked { "locked" } else { "unlocked" };
        log::info!("room {}: host {} {what} the room", ctx.room, me.name);
    }
}

/// `allow-recording` (host): off refuses every `recording: true` and stops the recordings under
/// way.
fn allow_recording(ctx: &Ctx, me: &Seated, allowed: bool) {
    let mut rooms = ctx.state.rooms();
    let done = host_result(
        rooms.set_recording_allowed(&ctx.room, me.seat, ctx.conn, allowed, Instant::now()),
        &ctx.outbox,
    );
    drop(rooms);
    if done {
        let what = if allowed { "allowed" } else { "turned off" };
        log::info!("room {}: host {} {what} recording", ctx.room, me.name);
    }
}

/// `remove` (host): frees that seat, tells its socket `removed`, bars it from the room.
fn remove(ctx: &Ctx, me: &Seated, id: SeatId) {
    let mut rooms = ctx.state.rooms();
    match rooms.remove(&ctx.room, me.seat, ctx.conn, id, Instant::now()) {
        Ok(removal) => {
            if let Some(victim) = removal.handle {
                victim.error(ErrorCode::Removed, ErrorCode::Removed.message());
            }
            let removed = !removal.notices.is_empty();
            deliver_notices(removal.notices);
            drop(rooms);
            if removed {
                log::info!("room {}: host {} removed seat {id}", ctx.room, me.name);
            }
        }
        Err(e) => {
            drop(rooms);
            host_error(e, &ctx.outbox);
        }
    }
}

/// Delivers a host action's notices (the caller still holds the room lock, so they stay in
/// order with other room changes), or tells the sender why not. True if it was done.
fn host_result(result: Result<Vec<Notice<Outbox>>, HostError>, outbox: &Outbox) -> bool {
    match result {
        Ok(notices) => {
            deliver_notices(notices);
            true
        }
        Err(e) => {
            host_error(e, outbox);
            false
        }
    }
}

fn host_error(e: HostError, outbox: &Outbox) {
    let code = match e {
        HostError::NotHost => ErrorCode::NotHost,
        HostError::NoFreeSeat => ErrorCode::NoFreeSeat,
    };
    outbox.error(code, code.message());
}

fn fresh_token() -> Token {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    Token(bytes)
}

/// Admits a join, or tells the client why not. Returns the seat on success.
pub(super) async fn join_room(
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
            addr: state.limits_apply_to(ip).then(|| AddrKey::of(ip)),
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
                recording_allowed: admitted.room.recording_allowed,
                password: admitted.room.password,
                ask: admitted.room.ask,
                chat: admitted.chat,
                resumed: admitted.resumed,
                knocks: admitted.knocks,
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
                name: join.name.as_str().into(),
                knocking: false,
            })
        }
        Err(Refusal::MustKnock) => {
            let conn = Conn {
                id: conn,
                handle: outbox.clone(),
                addr: state.limits_apply_to(ip).then(|| AddrKey::of(ip)),
            };
            match rooms.knock(room, join, conn, token, Instant::now()) {
                Ok(knocked) => {
                    outbox.push_msg(&ServerMsg::Knocking {
                        id: knocked.id,
                        token: knocked.token.to_hex(),
                    });
                    if let Some(old) = knocked.replaced {
                        old.error(ErrorCode::Replaced, ErrorCode::Replaced.message());
                    }
                    let fresh = knocked.token.matches(&token);
                    deliver_notices(knocked.notices);
                    drop(rooms);
                    if fresh {
                        bump(&state.metrics.knocks);
                    }
                    log::info!("room {room}: {} knocks (knock {})", join.name, knocked.id);
                    Some(Seated {
                        seat: knocked.id,
                        name: join.name.as_str().into(),
                        knocking: true,
                    })
                }
                Err(refusal) => {
                    drop(rooms);
                    refuse(state, room, join, outbox, refusal);
                    None
                }
            }
        }
        Err(refusal) => {
            drop(rooms);
            refuse(state, room, join, outbox, refusal);
            None
        }
    }
}

/// Tells a refused join why, and counts it.
fn refuse(state: &State, room: &RoomName, join: &Join, outbox: &Outbox, refusal: Refusal) {
    let m = &state.metrics;
    let (counter, code) = match refusal {
        Refusal::RoomFull => (Some(&m.refused_room_full), ErrorCode::RoomFull),
        Refusal::ServerBusy => (Some(&m.refused_server_busy), ErrorCode::ServerBusy),
        Refusal::TooManyRooms => (Some(&m.refused_too_many_rooms), ErrorCode::TooManyRooms),
        Refusal::BadPassword => (Some(&m.refused_bad_password), ErrorCode::BadPassword),
        Refusal::Locked => (Some(&m.refused_locked), ErrorCode::Locked),
        Refusal::Removed => (Some(&m.refused_removed), ErrorCode::Removed),
        Refusal::Denied => (Some(&m.refused_denied), ErrorCode::Denied),
        Refusal::TooManyKnocks => (Some(&m.refused_rate_limited), ErrorCode::RateLimited),
        // `join_room` turns it into a knock; reaching here is a knock list that
        // vanished under the same lock, which cannot happen.
        Refusal::MustKnock => (None, ErrorCode::ServerBusy),
    };
    if let Some(counter) = counter {
        bump(counter);
    }
    log::info!("room {room}: {} refused: {}", join.name, code.as_str());
    outbox.error(code, code.message());
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
