//! One WebSocket's session, one task: it reads a message, decodes it in one borrowed pass and
//! dispatches it to its handler (`handlers.rs`); writes what others queued on its bounded
//! [`Outbox`] when woken for it; pings; and at the end frees or holds the seat as the socket
//! ended. One task, not a reader and a writer: a second task and the lock that splitting the
//! socket needs cost each participant ~1.7 KiB (issue 18). A write that stalls holds up this
//! socket's reading only, for at most `timers.timeout_secs`, and then ends it.
//!
//! Architecture invariant: a session never waits on another session. Relaying is a lookup under
//! the room lock and a non-blocking push onto the peer's [`Outbox`]; a full outbox drops *that*
//! peer (it may resume), never stalls the sender.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::Message;

use crate::admission::guard::{MessageRate, SocketSlot};
use crate::core::bucket::Bucket;
use crate::core::rooms::RoomName;
use crate::io::inflight::{Charge, TooLargeBeforeJoin};
use crate::ops::metrics::bump;
use crate::signaling::handlers::{self, room_message_rate, Ctx, Flow, Seated, PASSWORD_RATE};
use crate::signaling::outbox::{Drain, Socket, Wrote};
// Re-exported: `state` and `lib.rs` reach the queue and the notice delivery through `session`.
pub use crate::signaling::outbox::{deliver_notices, Outbox};
use crate::signaling::protocol::{close, ClientMsg, ErrorCode};
use crate::signaling::state::{SocketPermit, State};

/// How a session ended, which decides what happens to its seat.
enum End {
    /// `leave` or a close frame from the client: free the seat now.
    Left,
    /// The socket broke or went silent: hold the seat for the grace period.
    Lost,
    /// The server is stopping: tell the client to come back.
    Shutdown,
    /// This server closed the socket (a close frame another session or a rule queued): the
    /// seat was already dealt with by whoever closed it, or is held as for a lost socket.
    Closed,
}

/// What woke the session.
enum Wake {
    Read(Option<Result<Message, WsError>>),
    /// The one timer: a ping is due, or the socket has been silent too long (or not joined in
    /// time).
    Timer,
    /// Something was queued for it, or its queue overflowed.
    Write,
    Stop,
}

/// Runs one WebSocket until it ends.
///
/// A function returning an `async move` block rather than an `async fn`: an `async fn` moves
/// each argument into a local of its own at the start and keeps the argument's slot too, so the
/// socket (552 bytes) and the rest would be held twice in every session's task. For the same
/// reason what the task keeps for its whole life is made here, before the block, and used by
/// it in place: a value the block moves into a local of its own is held twice too.
///
/// The task's size is every participant's cost (issue 18): it waits on one timer (the ping and
/// the read deadline, whichever is due first), one notification from its queue (something to
/// write, or the queue overflowed) and the shutdown; the writing of a batch and the ping,
/// which are brief, are boxed while they run rather than widen the task for its whole life.
#[allow(clippy::manual_async_fn)] // on purpose: see above
pub fn run(
    mut ws: Socket,
    charge: Arc<Charge>,
    room: RoomName,
    state: Arc<State>,
    permit: (SocketPermit, Option<SocketSlot>),
    ip: IpAddr,
    host: Option<String>,
) -> impl std::future::Future<Output = ()> + Send {
    // The few numbers this task needs, not a copy of every limit in its state.
    let (cap, silence, ping_every, join_timeout, grace) = {
        let l = state.limits();
        (
            (l.outbound_per_socket_kib * 1024) as usize,
            Duration::from_secs(l.timeout_secs),
            Duration::from_secs(l.ping_secs),
            Duration::from_secs(l.join_timeout_secs),
            l.seat_grace_secs,
        )
    };
    let mut rate = MessageRate::new(state.limits(), Instant::now());
    let mut warned_at: Option<Instant> = None;
    let outbox = Outbox::new(state.budget.clone(), cap);
    let mut drain = Drain::new(&outbox);
    let conn = state.next_conn_id();
    let mut ctx = Ctx {
        state: state.clone(),
        room,
        conn,
        outbox,
        password_rate: Bucket::full(PASSWORD_RATE, Instant::now()),
        room_message_rate: Bucket::full(room_message_rate(state.limits()), Instant::now()),
    };
    let mut seated: Option<Seated> = None;
    async move {
        let start = tokio::time::Instant::now();
        let mut ping_at = start + ping_every;
        // Until the join: the join deadline; then the silence timeout from the last message.
        let mut deadline = start + join_timeout;
        let timer = tokio::time::sleep_until(ping_at.min(deadline));
        tokio::pin!(timer);
        // One wait for the whole session, registered once: thousands of sessions do not take
        // the shutdown notification's lock on every wake.
        let stop = state.stopped();
        tokio::pin!(stop);

        let end = loop {
            let due = ping_at.min(deadline);
            if timer.deadline() != due {
                timer.as_mut().reset(due);
            }
            let wake = tokio::select! {
                next = ws.next() => Wake::Read(next),
                () = &mut timer => Wake::Timer,
                () = ctx.outbox.shared.ready.notified() => Wake::Write,
                () = &mut stop => Wake::Stop,
            };
            let message = match wake {
                Wake::Read(None) => break End::Lost,
                Wake::Read(Some(Err(e))) => {
                    read_error(&e, &ctx.outbox, &state);
                    break End::Lost;
                }
                Wake::Read(Some(Ok(message))) => message,
                Wake::Write if ctx.outbox.shared.is_dead() => {
                    bump(&state.metrics.slow_clients_dropped);
                    break End::Lost;
                }
                Wake::Write => {
                    let wrote = Box::pin(drain.write(&mut ws, silence, &state.metrics.relay)).await;
                    match wrote {
                        Wrote::Some => continue,
                        Wrote::Closed => break End::Closed,
                        Wrote::Failed => {
                            bump(&state.metrics.slow_clients_dropped);
                            break End::Lost;
                        }
                    }
                }
                Wake::Timer if tokio::time::Instant::now() >= deadline => {
                    if seated.is_none() {
                        ctx.outbox.close(close::POLICY, "join expected");
                    }
                    break End::Lost;
                }
                Wake::Timer => {
                    ping_at = tokio::time::Instant::now() + ping_every;
                    let ping = timeout(silence, ws.send(Message::Ping(Default::default())));
                    match Box::pin(ping).await {
                        Ok(Ok(())) => continue,
                        _ => break End::Lost,
                    }
                }
                Wake::Stop => break End::Shutdown,
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
                    ctx.outbox
                        .error(ErrorCode::BadRequest, "Send text frames with JSON only.");
                    if seated.is_none() {
                        ctx.outbox.close(close::POLICY, "join expected");
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
                    ctx.outbox
                        .error(ErrorCode::SlowDown, ErrorCode::SlowDown.message());
                }
                continue;
            }
            let parsed = ClientMsg::parse(&text);
            match (&seated, parsed) {
                (_, Err(why)) => {
                    bump(&state.metrics.bad_requests);
                    ctx.outbox.error(ErrorCode::BadRequest, &why.0);
                    if seated.is_none() {
                        ctx.outbox.close(close::POLICY, "join expected");
                        break End::Lost;
                    }
                }
                // A knock's `join` once admitted (or a first join): seated, knocking or refused.
                (None | Some(Seated { knocking: true, .. }), Ok(ClientMsg::Join(join))) => {
                    // Boxed: the join's future lives only while joining, and would otherwise
                    // widen every session's task for its whole life.
                    let seat = Box::pin(handlers::join_room(
                        &state,
                        &ctx.room,
                        &join,
                        conn,
                        &ctx.outbox,
                        (ip, host.as_deref()),
                    ))
                    .await;
                    match seat {
                        Some(s) => {
                            // A knock may not draw on the in-flight arena until it has a seat.
                            if !s.knocking {
                                charge.set_joined();
                            }
                            seated = Some(s);
                            deadline = tokio::time::Instant::now() + silence;
                        }
                        None => {
                            // A refused knock's own join (it was let in, and the room filled up
                            // or the host denied meanwhile) leaves nothing behind.
                            if let Some(me) = seated.take() {
                                let notices =
                                    state
                                        .rooms()
                                        .leave(&ctx.room, me.seat, conn, Instant::now());
                                deliver_notices(notices);
                            }
                            break End::Lost;
                        }
                    }
                }
                (Some(me), Ok(msg)) if me.knocking => {
                    if matches!(msg, ClientMsg::Leave) {
                        ctx.outbox.close(close::NORMAL, "left");
                        break End::Left;
                    }
                    bump(&state.metrics.bad_requests);
                    ctx.outbox.error(
                        ErrorCode::BadRequest,
                        "Waiting for the host to let you in: only `join` (once admitted) or `leave`.",
                    );
                }
                (None, Ok(_)) => {
                    bump(&state.metrics.bad_requests);
                    ctx.outbox
                        .error(ErrorCode::BadRequest, "The first message must be `join`.");
                    ctx.outbox.close(close::POLICY, "join expected");
                    break End::Lost;
                }
                (Some(me), Ok(msg)) => {
                    if let Flow::Leave = Box::pin(handlers::seated(&mut ctx, me, msg, now)).await {
                        break End::Left;
                    }
                }
            }
        };

        if let Some(me) = &seated {
            let now = Instant::now();
            let mut rooms = state.rooms();
            match end {
                End::Left => {
                    let notices = rooms.leave(&ctx.room, me.seat, conn, now);
                    if !notices.is_empty() {
                        log::info!("room {}: {} left (seat {})", ctx.room, me.name, me.seat);
                    }
                    deliver_notices(notices);
                }
                End::Lost | End::Closed => {
                    let notices = rooms.lost(&ctx.room, me.seat, conn, now);
                    if !notices.is_empty() {
                        log::info!(
                            "room {}: {} lost connection, seat {} held for {} s",
                            ctx.room,
                            me.name,
                            me.seat,
                            grace
                        );
                    }
                    deliver_notices(notices);
                }
                // The process is ending; the seat goes with it.
                End::Shutdown => {}
            }
        }
        if matches!(end, End::Shutdown) {
            ctx.outbox.close(close::GOING_AWAY, "server restarting");
        }
        // After a close frame nothing more is written; the client answers it or not.
        if !matches!(end, End::Closed) {
            // What is queued (a close frame, an error) goes out, but not forever.
            // Boxed: the largest of this task's waits, and the last.
            Box::pin(drain.finish(&mut ws, Duration::from_secs(1), &state.metrics.relay)).await;
        }
        drop(drain);
        drop(ws);
        drop(permit);
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
