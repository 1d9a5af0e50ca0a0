//! One socket's outbound side: the bounded [`Outbox`] every sender pushes to without waiting,
//! and the writer task that drains it (up to 64 queued messages per write, messages over 1 KiB
//! as fragments) and pings.
//!
//! Architecture invariant: no unbounded queue. A push that does not fit the socket's queue or
//! the outbound arena drops that socket, never blocks the sender; what a writer held goes back
//! to the arena even when the writer is aborted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, Notify};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame as WsFrame, Utf8Bytes};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::admission::budget::Budget;
use crate::core::rooms::{Event, Notice};
use crate::io::coalesce::Coalesce;
use crate::io::inflight::ChargedIo;
use crate::signaling::protocol::{ErrorCode, ServerMsg};

/// A WebSocket as the server holds it, with its layers (see `web::io`).
pub(crate) type Socket = WebSocketStream<ChargedIo<Coalesce<TokioIo<Upgraded>>>>;

/// How many frames a socket's queue holds; its bytes are bounded separately.
const QUEUE_FRAMES: usize = 256;

pub(crate) enum Frame {
    Text(Utf8Bytes),
    Close(u16, &'static str),
}

/// The sending side of one socket's bounded outbound queue. Cheap to clone; the room map holds
/// one per seat.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Frame>,
    pub(crate) shared: Arc<OutboxShared>,
}

pub(crate) struct OutboxShared {
    queued_bytes: AtomicUsize,
    cap_bytes: usize,
    budget: Arc<Budget>,
    /// Signalled when the queue overflowed or the writer failed: the session must end.
    pub(crate) dead: Notify,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    pub(crate) fn new(budget: Arc<Budget>, cap_bytes: usize) -> (Outbox, mpsc::Receiver<Frame>) {
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

    /// Queues a close frame; the writer sends it and stops.
    pub(crate) fn close(&self, code: u16, reason: &'static str) {
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
                recording_allowed: info.recording_allowed,
            },
            Event::Chat(line) => ServerMsg::Chat(line),
        };
        let text = Utf8Bytes::from(msg.to_json());
        for outbox in notice.to {
            outbox.push(text.clone());
        }
    }
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
pub(crate) async fn write_loop(
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
    use crate::core::limits::Limits;

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
