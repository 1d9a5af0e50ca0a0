//! One socket's outbound side: the bounded [`Outbox`] every sender pushes to without waiting,
//! and the session's writing of it (up to 64 queued messages per write, messages over 512 bytes as
//! fragments).
//!
//! Architecture invariant: no unbounded queue. A push that does not fit the socket's queue or
//! the outbound arena drops that socket, never blocks the sender; what a socket held goes back
//! to the arena when its session ends, however it ends.
//!
//! Why a queue behind a mutex and not a channel: a tokio channel costs every socket ~1.5 KiB
//! from its first message to its last (its shared state and a block of 32 slots), most of a
//! participant's memory when idle. This queue is empty until something is queued, and gives
//! back its memory once drained; the lock is held for a push or a pop, never across an
//! `.await`.
//!
//! A relayed signal's slot carries when its frame was read (a 32-bit stamp), and stays in the
//! queue, its text taken, until the batch carrying it is written: then the time it spent in the
//! server goes into `videomeet_relay_seconds`, with one clock reading per batch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame as WsFrame, Utf8Bytes};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::admission::budget::Budget;
use crate::core::rooms::{Event, Notice};
use crate::io::coalesce::Coalesce;
use crate::io::inflight::ChargedIo;
use crate::ops::metrics::Histogram;
use crate::signaling::protocol::{ErrorCode, ServerMsg};
use crate::util::time;

/// A WebSocket as the server holds it, with its layers (see `crate::io`).
pub(crate) type Socket = WebSocketStream<ChargedIo<Coalesce<TokioIo<Upgraded>>>>;

/// How many frames a socket's queue holds, those being written included; its bytes are bounded
/// separately.
const QUEUE_FRAMES: usize = 256;

/// A queue longer than this (queued and being written) draws only on the outbound arena's
/// first three quarters; the last quarter is kept for short queues. A socket that stops
/// reading grows its queue towards its own cap (2 MiB), so a few of them could otherwise hold
/// the whole arena while their sessions wait on a stalled write, and every message to a
/// socket that does read would fail and drop that socket as too slow: the attacker's
/// sockets would take the honest ones down with them. A reading socket's queue is a burst of
/// a call's start at most (offers of 4-20 KiB, candidates). Under the 64 MiB budget's 3 MiB
/// arena the reserve is 768 KiB: a dozen short queues at their longest at once, and many more
/// at the few KiB a reading socket's queue usually holds (20 MiB under the default budget).
const SHORT_QUEUE: usize = 64 * 1024;

pub(crate) enum Frame {
    Text(Utf8Bytes),
    /// A relayed signal and when its frame was read ([`time::stamp`]).
    Signal(Utf8Bytes, u32),
    /// A frame whose text the writer took: it stays at the front until its batch is written,
    /// with the stamp of the signal it was.
    Taken(Option<u32>),
    Close(u16, &'static str),
}

/// The sending side of one socket's bounded outbound queue. Cheap to clone (one pointer); the
/// room map holds one per seat.
#[derive(Clone)]
pub struct Outbox {
    pub(crate) shared: Arc<OutboxShared>,
}

pub(crate) struct OutboxShared {
    queue: Mutex<Queued>,
    /// Bytes queued or taken and not yet written, against `cap_bytes`.
    queued_bytes: AtomicUsize,
    cap_bytes: usize,
    budget: Arc<Budget>,
    /// Set when the queue overflowed: the session must end. It is told through `ready`, so
    /// that its task waits on one notification, not two.
    dead: AtomicBool,
    /// Signalled when something was queued, or the queue overflowed: the session writes what
    /// is queued, or ends (see [`OutboxShared::is_dead`]).
    pub(crate) ready: Notify,
}

#[derive(Default)]
struct Queued {
    frames: VecDeque<Frame>,
    /// The session has ended: pushes fail (and charge nothing).
    closed: bool,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    pub(crate) fn new(budget: Arc<Budget>, cap_bytes: usize) -> Outbox {
        let shared = Arc::new(OutboxShared {
            queue: Mutex::new(Queued::default()),
            queued_bytes: AtomicUsize::new(0),
            cap_bytes,
            budget,
            dead: AtomicBool::new(false),
            ready: Notify::new(),
        });
        Outbox { shared }
    }

    /// Queues a text frame without waiting. False when the socket's queue or the global
    /// outbound arena is full; the socket is then dropped, as it cannot keep up.
    pub fn push(&self, text: Utf8Bytes) -> bool {
        self.push_frame(text.len(), Frame::Text(text))
    }

    /// Queues a relayed signal whose frame was read at `read_at`, as [`Outbox::push`]; its time
    /// in the server is counted once it is written.
    pub fn push_signal(&self, text: Utf8Bytes, read_at: Instant) -> bool {
        self.push_frame(text.len(), Frame::Signal(text, time::stamp(read_at)))
    }

    fn push_frame(&self, len: usize, frame: Frame) -> bool {
        let s = &self.shared;
        let mut queue = s.lock();
        if queue.closed {
            return false;
        }
        let queued = s.queued_bytes.load(Ordering::Acquire) + len;
        let fits = queue.frames.len() < QUEUE_FRAMES && queued <= s.cap_bytes;
        // A long queue draws only on the arena's first three quarters (see SHORT_QUEUE).
        let arena = &s.budget.outbound;
        let within = if queued > SHORT_QUEUE {
            arena.capacity() / 4 * 3
        } else {
            arena.capacity()
        };
        if !fits || !arena.try_acquire_within(len as u64, within) {
            drop(queue);
            s.dead.store(true, Ordering::Release);
            s.ready.notify_one();
            return false;
        }
        s.queued_bytes.fetch_add(len, Ordering::AcqRel);
        queue.frames.push_back(frame);
        drop(queue);
        s.ready.notify_one();
        true
    }

    pub(crate) fn push_msg(&self, msg: &ServerMsg<'_>) -> bool {
        self.push(Utf8Bytes::from(msg.to_json()))
    }

    /// Sends an error, then closes with its close code if it has one.
    pub(crate) fn error(&self, code: ErrorCode, message: &str) {
        self.push_msg(&ServerMsg::Error { code, message });
        if let Some(close_code) = code.close_code() {
            self.close(close_code, code.as_str());
        }
    }

    /// Queues a close frame; the session sends it after what is queued before it, and ends.
    pub(crate) fn close(&self, code: u16, reason: &'static str) {
        let mut queue = self.shared.lock();
        if !queue.closed {
            queue.frames.push_back(Frame::Close(code, reason));
            drop(queue);
            self.shared.ready.notify_one();
        }
    }
}

impl OutboxShared {
    /// The queue overflowed: its socket cannot keep up and must be dropped.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, Queued> {
        // Nothing panics while holding it; a poisoned lock would only be seen in tests.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The frame at `index` (the writer's place in its batch), to write: a text frame's text is
    /// taken and its slot left, as [`Frame::Taken`], until [`OutboxShared::written`]; a close
    /// frame is taken out. Its bytes stay charged until [`OutboxShared::sent`].
    fn take(&self, index: usize) -> Option<Frame> {
        let mut queue = self.lock();
        let slot = queue.frames.get_mut(index)?;
        let taken = match slot {
            Frame::Text(_) => Frame::Taken(None),
            Frame::Signal(_, read_at) => Frame::Taken(Some(*read_at)),
            Frame::Taken(_) => return None, // never: the batch is the front of the queue
            Frame::Close(..) => return queue.frames.remove(index),
        };
        Some(std::mem::replace(slot, taken))
    }

    /// Removes the first `count` slots, the writer's batch. When it was written at `done`, each
    /// signal's time in the server goes into the histogram (a failed batch counts nothing). A
    /// drained queue gives back all its memory. (It used to keep up to 16 slots; a slot is 40
    /// bytes with the stamp, not 32, and an idle socket must not hold more than it did, so it now
    /// holds nothing: the next burst allocates again, beside the allocation that every relayed
    /// message's text costs anyway.)
    fn written(&self, count: usize, done: Option<(Instant, &Histogram)>) {
        let mut queue = self.lock();
        let count = count.min(queue.frames.len());
        for frame in queue.frames.drain(..count) {
            if let (Frame::Taken(Some(read_at)), Some((at, relay))) = (frame, done) {
                relay.observe_us(time::micros_since(read_at, at));
            }
        }
        if queue.frames.is_empty() {
            queue.frames = VecDeque::new();
        }
    }

    fn is_empty(&self) -> bool {
        self.lock().frames.is_empty()
    }

    /// Gives back what frames took once they are written (or thrown away).
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
                ask: info.ask,
                recording_allowed: info.recording_allowed,
            },
            Event::Chat(line) => ServerMsg::Chat(line),
            Event::Knock(knock) => ServerMsg::Knock(knock),
            Event::KnockGone(id) => ServerMsg::KnockGone { id },
            Event::Admitted => ServerMsg::Admitted,
        };
        let text = Utf8Bytes::from(msg.to_json());
        for outbox in notice.to {
            outbox.push(text.clone());
        }
    }
}

/// Longest frame written. tungstenite's write buffer keeps the capacity of the largest frame it
/// ever wrote, for the socket's whole life; a message longer than this (an SDP offer is 4-8 KiB)
/// goes out as a fragmented message instead (RFC 6455 section 5.4), which browsers join.
const SEND_FRAGMENT: usize = 512;

/// Feeds one text message to the socket, fragmented when longer than [`SEND_FRAGMENT`]; the
/// caller flushes.
async fn feed_text(ws: &mut Socket, text: Utf8Bytes) -> Result<(), WsError> {
    if text.len() <= SEND_FRAGMENT {
        return ws.feed(Message::Text(text)).await;
    }
    let bytes = Bytes::from(text);
    let count = bytes.len().div_ceil(SEND_FRAGMENT);
    for i in 0..count {
        let piece = bytes.slice(i * SEND_FRAGMENT..((i + 1) * SEND_FRAGMENT).min(bytes.len()));
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let frame = WsFrame::message(piece, OpCode::Data(opcode), i + 1 == count);
        ws.feed(Message::Frame(frame)).await?;
    }
    Ok(())
}

/// Most queued messages written before one flush: a busy socket's messages share write
/// system calls (and TCP segments) instead of taking one each.
const WRITE_BATCH: usize = 64;

/// What writing the queue came to.
pub(crate) enum Wrote {
    /// Written; more may be queued (the session is woken for it).
    Some,
    /// A close frame was written: the session ends.
    Closed,
    /// The socket failed or took nothing for the stall time: the session ends.
    Failed,
}

/// The session's end of its outbound queue. Whatever the queue holds, and what was taken from
/// it and not yet written, goes back to the outbound arena when this is dropped, however the
/// session ends (without this, sockets that stopped reading would leave the arena full).
pub(crate) struct Drain {
    shared: Arc<OutboxShared>,
    /// Bytes taken from the queue and not yet flushed to the socket.
    taken: usize,
}

impl Drain {
    pub(crate) fn new(outbox: &Outbox) -> Drain {
        Drain {
            shared: outbox.shared.clone(),
            taken: 0,
        }
    }

    fn release_taken(&mut self) {
        self.shared.sent(std::mem::take(&mut self.taken));
    }

    /// Writes up to [`WRITE_BATCH`] queued messages and flushes once (see `Coalesce`): one
    /// write system call for a busy socket's batch. A close frame ends it. Once the flush is
    /// done, the relayed signals among them are counted into `relay`.
    ///
    /// A function returning an `async move` block rather than an `async fn`, for the reason
    /// `session::run` gives: this future is part of every session's task, and an `async fn`
    /// would keep each argument twice in it.
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    pub(crate) fn write<'a>(
        &'a mut self,
        ws: &'a mut Socket,
        stall: Duration,
        relay: &'a Histogram,
    ) -> impl std::future::Future<Output = Wrote> + Send + 'a {
        async move {
            let mut closing = None;
            let mut batch = 0;
            let sent = timeout(stall, async {
                while batch < WRITE_BATCH {
                    match self.shared.take(batch) {
                        Some(Frame::Text(text) | Frame::Signal(text, _)) => {
                            batch += 1;
                            self.taken += text.len();
                            feed_text(ws, text).await?;
                        }
                        Some(Frame::Close(code, reason)) => {
                            closing = Some(CloseFrame {
                                code: CloseCode::from(code),
                                reason: reason.into(),
                            });
                            break;
                        }
                        Some(Frame::Taken(_)) | None => break,
                    }
                }
                ws.flush().await
            })
            .await;
            self.release_taken();
            let ok = matches!(sent, Ok(Ok(())));
            // The one clock reading of the batch.
            self.shared
                .written(batch, ok.then(|| (Instant::now(), relay)));
            if !ok {
                return Wrote::Failed;
            }
            if let Some(frame) = closing {
                let _ = timeout(stall, ws.send(Message::Close(Some(frame)))).await;
                return Wrote::Closed;
            }
            if !self.shared.is_empty() {
                self.shared.ready.notify_one();
            }
            Wrote::Some
        }
    }

    /// At the session's end: what is still queued (an error, a close frame), within `within`,
    /// then a close frame if none was among it. It does not wait for the client's answer: the
    /// socket, and what it holds, go as soon as the last frame is out.
    pub(crate) async fn finish(&mut self, ws: &mut Socket, within: Duration, relay: &Histogram) {
        let _ = timeout(within, async {
            loop {
                match self.write(ws, within, relay).await {
                    Wrote::Some if !self.shared.is_empty() => continue,
                    Wrote::Some => {
                        let _ = ws.send(Message::Close(None)).await;
                        return;
                    }
                    Wrote::Closed | Wrote::Failed => return,
                }
            }
        })
        .await;
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.release_taken();
        // Pushes fail from here on (and charge nothing); give back what was queued.
        let frames = {
            let mut queue = self.shared.lock();
            queue.closed = true;
            std::mem::take(&mut queue.frames)
        };
        for frame in frames {
            if let Frame::Text(text) | Frame::Signal(text, _) = frame {
                self.shared.sent(text.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::limits::Limits;

    /// A session that ends mid-batch (a socket that stopped reading, an abort) drops its
    /// drain: every byte queued or taken goes back to the outbound arena.
    #[test]
    fn an_ended_session_returns_its_bytes_to_the_arena() {
        let budget = Arc::new(Budget::new(&Limits::shipped()));
        let outbox = Outbox::new(budget.clone(), 64 * 1024);
        for _ in 0..3 {
            assert!(outbox.push(Utf8Bytes::from("x".repeat(1000))));
        }
        assert_eq!(budget.outbound.used(), 3000);
        let mut drain = Drain::new(&outbox);
        // The session took one message and was writing it when it ended.
        let Some(Frame::Text(text)) = outbox.shared.take(0) else {
            panic!("queued");
        };
        drain.taken += text.len();
        drop(drain);
        assert_eq!(budget.outbound.used(), 0);
        assert_eq!(outbox.shared.queued_bytes.load(Ordering::Acquire), 0);
        // Later pushes fail and charge nothing.
        assert!(!outbox.push(Utf8Bytes::from("late")));
        assert_eq!(budget.outbound.used(), 0);
    }

    /// The queue is bounded in frames and bytes; past either, the push fails and the session
    /// is told to end, and nothing is charged for what was refused.
    #[test]
    fn a_full_queue_refuses_and_marks_the_socket_dead() {
        let budget = Arc::new(Budget::new(&Limits::shipped()));
        let outbox = Outbox::new(budget.clone(), 10 * 1000);
        for _ in 0..10 {
            assert!(outbox.push(Utf8Bytes::from("x".repeat(1000))));
        }
        assert!(!outbox.push(Utf8Bytes::from("x")), "over the byte cap");
        assert!(outbox.shared.is_dead());
        assert_eq!(budget.outbound.used(), 10_000);
        let small = Outbox::new(budget.clone(), usize::MAX);
        for _ in 0..QUEUE_FRAMES {
            assert!(small.push(Utf8Bytes::from("y")));
        }
        assert!(!small.shared.is_dead(), "not dead while it fits");
        // The pushes' wake-up, taken as the session would.
        let woken = small.shared.ready.notified();
        futures_util::pin_mut!(woken);
        assert!(futures_util::FutureExt::now_or_never(woken.as_mut()).is_some());
        assert!(!small.push(Utf8Bytes::from("y")), "over the frame cap");
        assert!(small.shared.is_dead(), "marked dead");
        let told = small.shared.ready.notified();
        futures_util::pin_mut!(told);
        assert!(
            futures_util::FutureExt::now_or_never(told).is_some(),
            "the session was told"
        );
    }

    /// Queues that grow long (sockets that stopped reading) stop at the outbound arena's
    /// first three quarters; a short queue's next message still fits.
    #[test]
    fn long_queues_leave_the_arenas_last_quarter_to_short_ones() {
        let mut limits = Limits::shipped();
        limits.outbound_mib = 1;
        let budget = Arc::new(Budget::new(&limits));
        let capacity = budget.outbound.capacity();
        let hogs = [
            Outbox::new(budget.clone(), usize::MAX),
            Outbox::new(budget.clone(), usize::MAX),
        ];
        let message = || Utf8Bytes::from("z".repeat(4000));
        let mut refused = 0;
        for i in 0..1000 {
            if !hogs[i % 2].push(message()) {
                refused += 1;
            }
        }
        assert!(refused > 0, "the hogs were refused at last");
        let used = budget.outbound.used();
        assert!(
            used <= capacity / 4 * 3 && used > capacity / 4 * 3 - 8000,
            "{used}"
        );
        let reader = Outbox::new(budget.clone(), usize::MAX);
        for _ in 0..10 {
            assert!(reader.push(message()), "a short queue finds room");
        }
        assert!(!reader.shared.is_dead());
    }

    /// A drained burst gives its slots back; an idle socket's queue holds no memory.
    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let budget = Arc::new(Budget::new(&Limits::shipped()));
        let outbox = Outbox::new(budget, usize::MAX);
        for _ in 0..100 {
            outbox.push(Utf8Bytes::from("z"));
        }
        assert!(outbox.shared.lock().frames.capacity() >= 100);
        for i in 0..100 {
            assert!(outbox.shared.take(i).is_some());
        }
        outbox.shared.written(100, None);
        assert_eq!(outbox.shared.lock().frames.capacity(), 0);
        // A small burst too: a slot with its stamp is wider than it was, so none is kept.
        outbox.push(Utf8Bytes::from("z"));
        assert!(outbox.shared.take(0).is_some());
        outbox.shared.written(1, None);
        assert_eq!(outbox.shared.lock().frames.capacity(), 0);
    }

    /// Signals are counted once their batch is written, from when their frame was read; other
    /// frames and a failed batch count nothing.
    #[test]
    fn written_signals_are_timed_from_their_read() {
        let budget = Arc::new(Budget::new(&Limits::shipped()));
        let outbox = Outbox::new(budget, usize::MAX);
        let relay = Histogram::default();
        let read_at = Instant::now();
        outbox.push_signal(Utf8Bytes::from("a"), read_at);
        outbox.push(Utf8Bytes::from("notice"));
        outbox.push_signal(Utf8Bytes::from("b"), read_at);
        outbox.push_signal(Utf8Bytes::from("c"), read_at);
        for i in 0..2 {
            assert!(matches!(
                outbox.shared.take(i),
                Some(Frame::Signal(..) | Frame::Text(_))
            ));
        }
        assert!(outbox.shared.take(2).is_some());
        outbox
            .shared
            .written(3, Some((read_at + Duration::from_millis(2), &relay)));
        assert_eq!(relay.count(), 2);
        assert_eq!(outbox.shared.lock().frames.len(), 1, "the last one waits");
        assert!(outbox.shared.take(0).is_some());
        outbox.shared.written(1, None);
        assert_eq!(relay.count(), 2);
    }
}
