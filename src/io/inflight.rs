//! Charges the bytes of partly received messages to the in-flight arena.
//!
//! tungstenite gathers a message in memory until it is complete, up to the 1 MiB cap. Two
//! thousand sockets that each trickle an almost-1 MiB message would hold 2 GB that no per-socket
//! limit sees. [`ChargedIo`] sits under the WebSocket: every byte read is charged to the global
//! in-flight arena, and to its address's share of it, until the message it belongs to has been
//! handed to tungstenite whole; the [`Reframer`] says where each data message ends, so control
//! frames a client interleaves between fragments (legal, RFC 6455 section 5.4) neither give the
//! charge back nor restart the deadline. When the arena or the address's share is spent,
//! reading *pauses* (the socket's bytes wait in the kernel, not in our heap) and resumes as other
//! messages complete. A message that has begun must also finish within a deadline, so a trickler
//! cannot hold its share forever.
//!
//! Room for honest messages while the arena is contested, which many addresses can do:
//! - the first chunk of every message rides on the socket's own share (a join, an ICE candidate
//!   never wait);
//! - the arena's last quarter is a reserve for messages that have not passed [`LARGE_MESSAGE`]
//!   (offers and answers are 4-20 KiB), and one address may hold at most
//!   [`RESERVE_PER_ADDRESS`] of it, so a few hundred addresses are needed to spend it;
//! - while some reader waits on the arena, a message that has been open longer than
//!   [`CONTESTED_GRACE`] is cut (an honest one arrives in milliseconds; a 1 MiB message on a
//!   slow uplink that meets an attack is the price), so whatever the attacker spends, it holds
//!   it for seconds, and must then reconnect and rejoin within its address's join rate.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

pub use crate::admission::budget::AddressShare;
use crate::admission::budget::Budget;
use crate::io::reframe::Reframer;

/// How long a paused reader waits before it looks at the arena again.
const RETRY: Duration = Duration::from_millis(50);

/// A message held past this many bytes draws only on the arena's first three quarters.
pub const LARGE_MESSAGE: u64 = 64 * 1024;

pub use crate::admission::budget::RESERVE_PER_ADDRESS;

/// How long a message may stay open while another reader waits on the arena.
pub const CONTESTED_GRACE: Duration = Duration::from_secs(2);

/// One socket's share of the in-flight arena.
pub struct Charge {
    budget: Arc<Budget>,
    /// The shares of the arena that all sockets of this socket's address draw on together
    /// (none for addresses exempt from per-address limits).
    address: Option<Arc<AddressShare>>,
    /// Bytes read since the last message ended.
    held: AtomicU64,
    /// The part of `held` charged to the arena (the first chunk rides on the socket's own share).
    charged: AtomicU64,
    /// The part of `charged` taken from the reserve quarter.
    reserved: AtomicU64,
    /// Set once the socket has a seat. Before that it may not draw on the arena at all: a join
    /// fits in the first chunk, and 2,000 sockets that never join must not be able to spend the
    /// arena that joined participants' offers need (under a 64 MiB budget they could, and honest
    /// participants would wait on paused reads until the heartbeat dropped them).
    joined: AtomicBool,
}

/// The error a read returns when a socket without a seat sends a message longer than one chunk.
#[derive(Debug)]
pub struct TooLargeBeforeJoin;

impl std::fmt::Display for TooLargeBeforeJoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a message before join is longer than a join can be")
    }
}

impl std::error::Error for TooLargeBeforeJoin {}

impl Charge {
    pub fn new(budget: Arc<Budget>, address: Option<Arc<AddressShare>>) -> Arc<Charge> {
        Arc::new(Charge {
            budget,
            address,
            held: AtomicU64::new(0),
            charged: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            joined: AtomicBool::new(false),
        })
    }

    /// The socket has a seat: its messages may now be as long as the frame cap.
    pub fn set_joined(&self) {
        self.joined.store(true, Ordering::Release);
    }

    /// A message was handed over whole: what it took goes back to the arena. `rest` bytes,
    /// already read, belong to the next frames (at most one chunk, which needs no charge).
    fn settle_to(&self, rest: u64) {
        self.held.store(rest, Ordering::Release);
        let charged = self.charged.swap(0, Ordering::AcqRel);
        let reserved = self.reserved.swap(0, Ordering::AcqRel);
        self.release(charged - reserved, false);
        self.release(reserved, true);
    }

    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }

    /// Takes `amount` for a read: from the arena's first three quarters, or for a message not
    /// yet large from the reserve quarter within the address's part of it; always within the
    /// address's whole share. `Some(true)` if it came from the reserve, `None` if it did not fit
    /// (nothing taken).
    fn acquire(&self, amount: u64, large: bool) -> Option<bool> {
        let arena = &self.budget.in_flight;
        let bulk = crate::admission::budget::open_part(arena.capacity());
        let share = self.address.as_deref();
        if share.is_some_and(|s| !s.all.try_acquire(amount)) {
            return self.refused();
        }
        if arena.try_acquire_within(amount, bulk) {
            return Some(false);
        }
        if !large && share.map_or(true, |s| s.reserve.try_acquire(amount)) {
            if arena.try_acquire(amount) {
                return Some(true);
            }
            if let Some(s) = share {
                s.reserve.release(amount);
            }
        }
        if let Some(s) = share {
            s.all.release(amount);
        }
        self.refused()
    }

    /// Notes that a reader waits on the arena (see [`CONTESTED_GRACE`]).
    fn refused(&self) -> Option<bool> {
        let ms = self.budget.epoch.elapsed().as_millis() as u64 + 1;
        self.budget
            .in_flight_refused_at
            .store(ms, Ordering::Release);
        None
    }

    /// True while some reader has waited on the arena within the last [`CONTESTED_GRACE`].
    fn contested(&self) -> bool {
        let at = self.budget.in_flight_refused_at.load(Ordering::Acquire);
        let now = self.budget.epoch.elapsed().as_millis() as u64 + 1;
        at > 0 && now.saturating_sub(at) < CONTESTED_GRACE.as_millis() as u64
    }

    fn release(&self, amount: u64, reserved: bool) {
        if amount == 0 {
            return;
        }
        self.budget.in_flight.release(amount);
        if let Some(s) = &self.address {
            s.all.release(amount);
            if reserved {
                s.reserve.release(amount);
            }
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.settle_to(0);
    }
}

/// The longest frame handed to tungstenite for a read buffer of `chunk`: a third of it, less the
/// largest header. tungstenite reserves a frame's length on top of the payload it already holds
/// (2 x the frame), and moves bytes to the front of its buffer only when they do not overlap; a
/// frame of a third fits wherever in the buffer the one before it ended.
fn fragment_for(chunk: usize) -> usize {
    (chunk / 3).saturating_sub(16).max(1)
}

/// An I/O stream whose reads are charged to the in-flight arena, with a [`Reframer`] between
/// the socket and tungstenite (see there for why frames are held back and re-cut).
pub struct ChargedIo<T> {
    inner: T,
    charge: Arc<Charge>,
    /// Largest single read: reading never overshoots the arena by more than this.
    chunk: usize,
    /// Wakes the reader while a message is open: every [`CONTESTED_GRACE`] to see whether the
    /// arena is contested, and at the message deadline. Armed by the message's first byte,
    /// disarmed only when the message has been handed over whole.
    deadline: Option<Pin<Box<Sleep>>>,
    /// When the open message began.
    begun: Option<tokio::time::Instant>,
    limit: Duration,
    pause: Option<Pin<Box<Sleep>>>,
    frames: Reframer,
    eof: bool,
}

impl<T> ChargedIo<T> {
    pub fn new(inner: T, charge: Arc<Charge>, chunk: usize, deadline: Duration) -> ChargedIo<T> {
        ChargedIo {
            inner,
            charge,
            chunk,
            deadline: None,
            begun: None,
            limit: deadline,
            pause: None,
            frames: Reframer::new(fragment_for(chunk), u64::MAX),
            eof: false,
        }
    }

    /// The frame cap given to tungstenite, so over-long headers reach it at once to be refused.
    pub fn with_max_frame(mut self, max_frame: u64) -> ChargedIo<T> {
        self.frames = Reframer::new(fragment_for(self.chunk), max_frame);
        self
    }

    /// A message is in tungstenite's hands whole: its charge goes back and its deadline ends.
    fn message_done(&mut self) {
        self.charge.settle_to(self.frames.queued_bytes());
        self.deadline = None;
        self.begun = None;
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ChargedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if !this.frames.is_empty() {
                let done = this.frames.deliver(buf.initialize_unfilled());
                buf.advance(done.bytes);
                if done.ended_message {
                    this.message_done();
                }
                if done.bytes > 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            ready!(this.poll_fill(cx))?;
        }
    }
}

impl<T: AsyncRead + Unpin> ChargedIo<T> {
    fn arm_deadline(&mut self, cx: &mut Context<'_>) {
        if self.deadline.is_none() {
            let now = tokio::time::Instant::now();
            let begun = *self.begun.get_or_insert(now);
            let next = (now + CONTESTED_GRACE).min(begun + self.limit);
            let mut deadline = Box::pin(tokio::time::sleep_until(next));
            let _ = deadline.as_mut().poll(cx);
            self.deadline = Some(deadline);
        }
    }

    /// Whether the open message must be cut now: past its deadline, or past the grace while
    /// the arena is contested and it holds some of it.
    fn overdue(&mut self, cx: &mut Context<'_>) -> Option<&'static str> {
        let deadline = self.deadline.as_mut()?;
        // Polled here so that the timer wakes this task even while the peer sends nothing.
        if deadline.as_mut().poll(cx).is_pending() {
            return None;
        }
        self.deadline = None;
        let age = self.begun.map_or(Duration::ZERO, |b| b.elapsed());
        if age >= self.limit {
            return Some("a message took too long to arrive");
        }
        if self.charge.charged.load(Ordering::Acquire) > 0 && self.charge.contested() {
            return Some("a slow message was cut while others waited for memory");
        }
        self.arm_deadline(cx);
        None
    }

    /// Reads one chunk from the socket (charged, paused when the arena is spent, under the
    /// message deadline) and sorts it.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let held = self.charge.held();
        if held == 0 {
            self.deadline = None;
            self.begun = None;
        } else {
            self.arm_deadline(cx);
            if let Some(why) = self.overdue(cx) {
                // The message is cut and the socket ends: what it held goes back now, not
                // when the session has said goodbye and dropped the socket.
                self.frames = self.frames.emptied();
                self.charge.settle_to(0);
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
            }
        }
        if let Some(pause) = self.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
            self.pause = None;
        }
        // The first chunk of each message is covered by the socket's own share of the budget
        // (its read buffer), so small messages - a join, an ICE candidate - never wait on the
        // arena, even while tricklers have spent it.
        let free = (self.chunk as u64).saturating_sub(held);
        if free == 0 && !self.charge.joined.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                TooLargeBeforeJoin,
            )));
        }
        let want = if free > 0 { free } else { self.chunk as u64 };
        let charged = if free > 0 { 0 } else { want };
        let reserved = if charged > 0 {
            self.charge.acquire(charged, held + want > LARGE_MESSAGE)
        } else {
            Some(false)
        };
        let Some(reserved) = reserved else {
            // Spent: leave the bytes in the kernel and look again shortly.
            let mut pause = Box::pin(tokio::time::sleep(RETRY));
            let _ = pause.as_mut().poll(cx);
            self.pause = Some(pause);
            return Poll::Pending;
        };
        let mut space = vec![0u8; want as usize];
        let mut read = ReadBuf::new(&mut space);
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut read);
        let got = read.filled().len();
        // Keep what was read, give back what was not.
        if charged > 0 {
            self.charge.release(charged - got as u64, reserved);
            self.charge.charged.fetch_add(got as u64, Ordering::AcqRel);
            if reserved {
                self.charge.reserved.fetch_add(got as u64, Ordering::AcqRel);
            }
        }
        match polled {
            Poll::Ready(Ok(())) if got == 0 => {
                self.eof = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(())) => {
                self.charge.held.fetch_add(got as u64, Ordering::AcqRel);
                self.arm_deadline(cx);
                self.frames.push(&space[..got]);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ChargedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::budget::Arena;
    use crate::core::limits::Limits;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn tiny_budget(in_flight_bytes: u64) -> Arc<Budget> {
        let mut budget = Budget::new(&Limits::shipped());
        budget.in_flight = Arena::new("in_flight", in_flight_bytes);
        Arc::new(budget)
    }

    fn joined(budget: &Arc<Budget>, address: Option<Arc<AddressShare>>) -> Arc<Charge> {
        let charge = Charge::new(budget.clone(), address);
        charge.set_joined();
        charge
    }

    /// An unmasked frame header for `len` (< 126) payload bytes; `first` is FIN and opcode.
    fn header(first: u8, len: u8) -> [u8; 2] {
        [first, len]
    }

    /// Reads until `n` bytes have come through, or fails if they do not within 100 ms.
    async fn read_n<T: AsyncRead + Unpin>(io: &mut ChargedIo<T>, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        match tokio::time::timeout(Duration::from_millis(100), io.read_exact(&mut buf)).await {
            Ok(r) => r.map(|_| buf),
            Err(_) => Err(io::Error::new(io::ErrorKind::WouldBlock, "paused")),
        }
    }

    #[tokio::test]
    async fn reads_are_charged_until_the_message_ends_and_pause_when_spent() {
        let budget = tiny_budget(8);
        let (mut tx_a, rx_a) = tokio::io::duplex(64);
        let (mut tx_b, rx_b) = tokio::io::duplex(64);
        // Every frame passes straight through (none is "large" under a 0-byte frame cap).
        let mut a = ChargedIo::new(rx_a, joined(&budget, None), 4, Duration::from_secs(10))
            .with_max_frame(0);
        let mut b = ChargedIo::new(rx_b, joined(&budget, None), 4, Duration::from_secs(10))
            .with_max_frame(0);
        // A's message is open: a first fragment without FIN.
        tx_a.write_all(&header(0x01, 10)).await.unwrap();
        tx_a.write_all(b"0123456789").await.unwrap();
        assert_eq!(&read_n(&mut a, 12).await.unwrap()[2..], b"0123456789");
        // The first chunk (4 bytes) rides on the socket's own share; the next 8 are charged.
        assert_eq!(budget.in_flight.used(), 8, "eight bytes held");
        // The arena is spent: another socket's long message waits instead of growing.
        tx_b.write_all(&header(0x81, 8)).await.unwrap();
        tx_b.write_all(b"abcdefgh").await.unwrap();
        assert!(read_n(&mut b, 4).await.is_ok(), "its first chunk is free");
        assert!(
            read_n(&mut b, 4).await.is_err(),
            "paused while the arena is spent"
        );
        // A goes away: its bytes go back, and B goes on to the end of its message, which
        // gives back what B took.
        drop(a);
        assert_eq!(budget.in_flight.used(), 0);
        assert_eq!(read_n(&mut b, 6).await.unwrap(), b"cdefgh");
        assert_eq!(budget.in_flight.used(), 0, "B's message ended");
    }

    #[tokio::test]
    async fn a_message_that_trickles_past_its_deadline_is_cut() {
        let budget = tiny_budget(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut io = ChargedIo::new(rx, joined(&budget, None), 1024, Duration::from_millis(100));
        tx.write_all(&header(0x81, 5)).await.unwrap();
        tx.write_all(b"a").await.unwrap();
        read_n(&mut io, 3).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.write_all(b"b").await.unwrap();
        let err = read_n(&mut io, 1).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    /// The attack of issue 13: a client that answers pings keeps a fragmented message open.
    /// Control frames between fragments must neither give the charge back nor restart the
    /// message's deadline.
    #[tokio::test]
    async fn pings_between_fragments_keep_the_charge_and_the_deadline() {
        let budget = tiny_budget(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(4096);
        let mut io = ChargedIo::new(rx, joined(&budget, None), 4, Duration::from_millis(200))
            .with_max_frame(0);
        // A first fragment of 20 bytes, no FIN: 16 past the free chunk are charged.
        tx.write_all(&header(0x01, 20)).await.unwrap();
        tx.write_all(&[b'x'; 20]).await.unwrap();
        read_n(&mut io, 22).await.unwrap();
        assert_eq!(budget.in_flight.used(), 20 + 2 - 4);
        let cut = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                // A pong and a ping every 30 ms, each delivered in full.
                tx.write_all(&header(0x8a, 0)).await.unwrap();
                tx.write_all(&header(0x89, 0)).await.unwrap();
                let mut two = [0u8; 2];
                if let Err(e) = io.read_exact(&mut two).await {
                    return e;
                }
                assert!(budget.in_flight.used() >= 18, "still charged");
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
        .await
        .expect("the deadline fired");
        assert_eq!(cut.kind(), io::ErrorKind::TimedOut);
    }

    /// Pongs and pings outside a data message end "messages" of their own: an idle socket
    /// that answers the heartbeat for longer than the deadline is never cut.
    #[tokio::test]
    async fn control_frames_outside_a_message_settle_at_once() {
        let budget = tiny_budget(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(4096);
        let mut io = ChargedIo::new(rx, joined(&budget, None), 4, Duration::from_millis(100))
            .with_max_frame(0);
        for _ in 0..10 {
            tx.write_all(&header(0x8a, 4)).await.unwrap();
            tx.write_all(b"beat").await.unwrap();
            read_n(&mut io, 6).await.unwrap();
            assert_eq!(io.charge.held(), 0);
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert_eq!(budget.in_flight.used(), 0);
    }

    #[tokio::test]
    async fn without_a_seat_a_message_may_not_pass_one_chunk() {
        let budget = tiny_budget(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(256);
        let mut io = ChargedIo::new(
            rx,
            Charge::new(budget.clone(), None),
            8,
            Duration::from_secs(10),
        )
        .with_max_frame(0);
        tx.write_all(&header(0x81, 20)).await.unwrap();
        tx.write_all(b"0123456789abcdefghij").await.unwrap();
        let err = read_n(&mut io, 22).await.unwrap_err();
        assert!(err.get_ref().is_some_and(|e| e.is::<TooLargeBeforeJoin>()));
        assert_eq!(budget.in_flight.used(), 0, "nothing was charged");
    }

    /// Issue 13.1: were the charge settled after every pong, a seatless socket could send a
    /// fragmented message of any length as long as it interleaved control frames.
    #[tokio::test]
    async fn without_a_seat_control_frames_between_fragments_do_not_reset_the_rule() {
        let budget = tiny_budget(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(4096);
        let mut io = ChargedIo::new(
            rx,
            Charge::new(budget.clone(), None),
            8,
            Duration::from_secs(10),
        )
        .with_max_frame(0);
        let mut err = None;
        for _ in 0..10 {
            tx.write_all(&header(0x00, 4)).await.unwrap();
            tx.write_all(b"more").await.unwrap();
            tx.write_all(&header(0x8a, 0)).await.unwrap();
            if let Err(e) = read_n(&mut io, 8).await {
                err = Some(e);
                break;
            }
        }
        let err = err.expect("refused within a few fragments");
        assert!(err.get_ref().is_some_and(|e| e.is::<TooLargeBeforeJoin>()));
    }

    /// All sockets of one address draw on one share of the arena; other addresses do not
    /// notice it is spent.
    #[tokio::test]
    async fn one_address_may_hold_only_its_share() {
        let budget = tiny_budget(1 << 20);
        let share = Arc::new(AddressShare::new(8));
        let (mut tx_a, rx_a) = tokio::io::duplex(64);
        let (mut tx_b, rx_b) = tokio::io::duplex(64);
        let (mut tx_c, rx_c) = tokio::io::duplex(64);
        let open = |rx, address| {
            ChargedIo::new(rx, joined(&budget, address), 4, Duration::from_secs(10))
                .with_max_frame(0)
        };
        let mut a = open(rx_a, Some(share.clone()));
        let mut b = open(rx_b, Some(share.clone()));
        let mut c = open(rx_c, None);
        for tx in [&mut tx_a, &mut tx_b, &mut tx_c] {
            tx.write_all(&header(0x81, 30)).await.unwrap();
            tx.write_all(&[b'x'; 30]).await.unwrap();
        }
        read_n(&mut a, 12).await.unwrap();
        assert_eq!(share.used(), 8, "A took the address's whole share");
        read_n(&mut b, 4).await.unwrap();
        assert!(read_n(&mut b, 4).await.is_err(), "B, same address, waits");
        assert!(
            read_n(&mut c, 32).await.is_ok(),
            "C, another address, did not wait"
        );
        assert_eq!(budget.in_flight.used(), 8, "C's message ended; A's is open");
    }

    /// While a reader waits on a spent arena, a message open for longer than the grace is cut;
    /// while nobody waits, it may take its whole deadline.
    #[tokio::test]
    async fn a_long_open_message_is_cut_when_others_wait() {
        // Room for A's 8 and its pong's read, not for B's second chunk as well.
        let budget = tiny_budget(12);
        let (mut tx_a, rx_a) = tokio::io::duplex(64);
        let (mut tx_b, rx_b) = tokio::io::duplex(64);
        let mut a = ChargedIo::new(rx_a, joined(&budget, None), 4, Duration::from_secs(30))
            .with_max_frame(0);
        let mut b = ChargedIo::new(rx_b, joined(&budget, None), 4, Duration::from_secs(30))
            .with_max_frame(0);
        tx_a.write_all(&header(0x01, 10)).await.unwrap();
        tx_a.write_all(b"0123456789").await.unwrap();
        read_n(&mut a, 12).await.unwrap();
        // Nobody waits yet: A outlives the grace.
        tokio::time::sleep(CONTESTED_GRACE + Duration::from_millis(200)).await;
        tx_a.write_all(&header(0x8a, 0)).await.unwrap();
        read_n(&mut a, 2).await.expect("not cut while uncontested");
        // B waits on the arena: at its next wake-up A is cut, and B goes on.
        tx_b.write_all(&header(0x81, 8)).await.unwrap();
        tx_b.write_all(b"abcdefgh").await.unwrap();
        read_n(&mut b, 4).await.unwrap();
        let mut rest = [0u8; 6];
        let b_done = tokio::spawn(async move { b.read_exact(&mut rest).await.map(|_| rest) });
        let mut one = [0u8; 1];
        let err = tokio::time::timeout(CONTESTED_GRACE * 2, a.read_exact(&mut one))
            .await
            .expect("A is cut within the grace")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(a);
        let rest = tokio::time::timeout(Duration::from_secs(1), b_done)
            .await
            .expect("B goes on")
            .unwrap()
            .unwrap();
        assert_eq!(&rest, b"cdefgh");
    }

    /// The reserve quarter: one address may hold only its part of it, others still get in.
    #[tokio::test]
    async fn the_reserve_is_shared_out_by_address() {
        let budget = tiny_budget(4 * RESERVE_PER_ADDRESS);
        // The first three quarters are taken by someone else.
        assert!(budget.in_flight.try_acquire(3 * RESERVE_PER_ADDRESS));
        let one = Arc::new(AddressShare::new(1 << 20));
        let other = Arc::new(AddressShare::new(1 << 20));
        let a = joined(&budget, Some(one.clone()));
        assert_eq!(a.acquire(RESERVE_PER_ADDRESS / 2, false), Some(true));
        assert_eq!(a.acquire(RESERVE_PER_ADDRESS / 2, false), Some(true));
        assert_eq!(a.acquire(1, false), None, "the address's part is spent");
        assert_eq!(
            one.used(),
            RESERVE_PER_ADDRESS,
            "and nothing taken by the refusal"
        );
        let b = joined(&budget, Some(other));
        assert_eq!(
            b.acquire(1, true),
            None,
            "large messages never use the reserve"
        );
        assert_eq!(b.acquire(1, false), None, "the reserve is spent by A");
        a.charged.store(RESERVE_PER_ADDRESS, Ordering::Release);
        a.reserved.store(RESERVE_PER_ADDRESS, Ordering::Release);
        a.settle_to(0);
        assert_eq!(one.used(), 0);
        assert_eq!(budget.in_flight.used(), 3 * RESERVE_PER_ADDRESS);
        assert_eq!(b.acquire(1000, false), Some(true));
    }

    /// A message past LARGE_MESSAGE may not take the last quarter of the arena, which stays for
    /// offers and answers.
    #[tokio::test]
    async fn large_messages_leave_a_quarter_for_small_ones() {
        let budget = tiny_budget(4 * LARGE_MESSAGE);
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let mut big = ChargedIo::new(rx, joined(&budget, None), 2048, Duration::from_secs(10))
            .with_max_frame(0);
        let long = vec![b'x'; (4 * LARGE_MESSAGE) as usize];
        tx.write_all(&[0x81, 127]).await.unwrap();
        tx.write_all(&(long.len() as u64).to_be_bytes())
            .await
            .unwrap();
        tx.write_all(&long).await.unwrap();
        let mut sink = vec![0u8; long.len()];
        let stopped =
            tokio::time::timeout(Duration::from_millis(200), big.read_exact(&mut sink)).await;
        assert!(stopped.is_err(), "the large message pauses");
        let used = budget.in_flight.used();
        assert!(used <= 3 * LARGE_MESSAGE, "{used} within three quarters");
        assert!(used > 3 * LARGE_MESSAGE - 4096, "{used} took what it may");
        // A small message of another socket still gets through.
        let (mut tx2, rx2) = tokio::io::duplex(64 * 1024);
        let mut small = ChargedIo::new(rx2, joined(&budget, None), 2048, Duration::from_secs(10))
            .with_max_frame(0);
        let offer = vec![b'o'; 8000];
        tx2.write_all(&[0x81, 126]).await.unwrap();
        tx2.write_all(&(offer.len() as u16).to_be_bytes())
            .await
            .unwrap();
        tx2.write_all(&offer).await.unwrap();
        let got = read_n(&mut small, offer.len() + 4).await.unwrap();
        assert_eq!(&got[4..], &offer[..]);
    }

    #[tokio::test]
    async fn a_large_frame_is_handed_over_only_when_whole() {
        let budget = tiny_budget(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(256);
        let mut io = ChargedIo::new(rx, joined(&budget, None), 4, Duration::from_secs(10))
            .with_max_frame(100);
        // A small frame passes at once; a 10-byte one (over the 4-byte chunk) is held back,
        // header included, while it trickles.
        tx.write_all(&header(0x81, 3)).await.unwrap();
        tx.write_all(b"hi!").await.unwrap();
        tx.write_all(&header(0x81, 10)).await.unwrap();
        tx.write_all(b"01234").await.unwrap();
        assert_eq!(read_n(&mut io, 5).await.unwrap(), b"\x81\x03hi!");
        assert!(
            read_n(&mut io, 1).await.is_err(),
            "not even the header of the large frame yet"
        );
        tx.write_all(b"56789").await.unwrap();
        // A header over the frame cap is not held: tungstenite refuses it on sight.
        tx.write_all(&[0x81, 126, 0x01, 0x00]).await.unwrap();
        assert_eq!(read_n(&mut io, 12).await.unwrap(), b"\x81\x0a0123456789");
        assert_eq!(read_n(&mut io, 4).await.unwrap(), [0x81, 126, 0x01, 0x00]);
    }

    #[tokio::test]
    async fn a_read_stops_at_the_end_of_a_frame() {
        let budget = tiny_budget(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(256);
        let mut io = ChargedIo::new(rx, Charge::new(budget, None), 64, Duration::from_secs(10));
        tx.write_all(b"\x81\x02hi\x81\x03you").await.unwrap();
        let mut buf = [0u8; 64];
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"\x81\x02hi", "only the first frame");
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"\x81\x03you");
    }

    /// A browser's 5 KB message, with multi-byte characters across the cut points, reaches the
    /// server whole and unchanged through real tungstenite on both ends, also when the client
    /// fragments it itself and pings between the fragments.
    #[tokio::test]
    async fn long_messages_cross_as_fragments_unchanged() {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::WebSocketStream;

        let budget = tiny_budget(1 << 20);
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let io = ChargedIo::new(
            server_io,
            joined(&budget, None),
            2048,
            Duration::from_secs(10),
        )
        .with_max_frame(1 << 20);
        let config = WebSocketConfig::default().read_buffer_size(2048);
        let mut server = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let text: String = "sdp ü€𝄞 ".repeat(400);
        assert!(text.len() > 5000);
        client.send(Message::text(text.clone())).await.unwrap();
        client.send(Message::text("after")).await.unwrap();
        let got = server.next().await.unwrap().unwrap();
        assert_eq!(got.into_text().unwrap().as_str(), text);
        let got = server.next().await.unwrap().unwrap();
        assert_eq!(got.into_text().unwrap().as_str(), "after");

        let bytes = bytes::Bytes::from(text.clone());
        let (one, two) = (bytes.slice(..3000), bytes.slice(3000..));
        let first = Frame::message(one, OpCode::Data(Data::Text), false);
        client.send(Message::Frame(first)).await.unwrap();
        client
            .send(Message::Ping(bytes::Bytes::new()))
            .await
            .unwrap();
        let last = Frame::message(two, OpCode::Data(Data::Continue), true);
        client.send(Message::Frame(last)).await.unwrap();
        let ping = server.next().await.unwrap().unwrap();
        assert!(ping.is_ping());
        assert!(
            budget.in_flight.used() > 0,
            "the open message is still charged"
        );
        let got = server.next().await.unwrap().unwrap();
        assert_eq!(got.into_text().unwrap().as_str(), text);
        assert_eq!(budget.in_flight.used(), 0);
    }
}
