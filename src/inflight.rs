//! Charges the bytes of partly received messages to the in-flight arena.
//!
//! tungstenite gathers a message in memory until it is complete, up to the 1 MiB cap. Two
//! thousand sockets that each trickle an almost-1 MiB frame would hold 2 GB that no per-socket
//! limit sees. [`ChargedIo`] sits under the WebSocket: every byte read is charged to the global
//! in-flight arena until the session has a complete message in hand (it then calls
//! [`Charge::settle`]). When the arena is spent, reading *pauses* (the socket's bytes wait in
//! the kernel, not in our heap) and resumes as other messages complete. A message that has
//! begun must also finish within a deadline, so a trickler cannot hold its share forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::budget::Budget;

/// How long a paused reader waits before it looks at the arena again.
const RETRY: Duration = Duration::from_millis(50);

/// One socket's share of the in-flight arena.
pub struct Charge {
    budget: Arc<Budget>,
    /// Bytes read since the last complete message.
    held: AtomicU64,
    /// The part of `held` charged to the arena (the first chunk rides on the socket's own share).
    charged: AtomicU64,
}

impl Charge {
    pub fn new(budget: Arc<Budget>) -> Arc<Charge> {
        Arc::new(Charge {
            budget,
            held: AtomicU64::new(0),
            charged: AtomicU64::new(0),
        })
    }

    /// A complete message was taken out of the socket: what it took goes back to the arena.
    pub fn settle(&self) {
        self.held.store(0, Ordering::Release);
        let charged = self.charged.swap(0, Ordering::AcqRel);
        if charged > 0 {
            self.budget.in_flight.release(charged);
        }
    }

    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.settle();
    }
}

/// An I/O stream whose reads are charged to the in-flight arena.
pub struct ChargedIo<T> {
    inner: T,
    charge: Arc<Charge>,
    /// Largest single read: reading never overshoots the arena by more than this.
    chunk: usize,
    /// Fires when the message now being received has taken too long; armed by its first byte.
    deadline: Option<Pin<Box<Sleep>>>,
    limit: Duration,
    pause: Option<Pin<Box<Sleep>>>,
}

impl<T> ChargedIo<T> {
    pub fn new(inner: T, charge: Arc<Charge>, chunk: usize, deadline: Duration) -> ChargedIo<T> {
        ChargedIo {
            inner,
            charge,
            chunk,
            deadline: None,
            limit: deadline,
            pause: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ChargedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.charge.held() == 0 {
            this.deadline = None;
        } else if let Some(deadline) = this.deadline.as_mut() {
            // Polled here so that the timer wakes this task even while the peer sends nothing.
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "a message took too long to arrive",
                )));
            }
        }
        if let Some(pause) = this.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
            this.pause = None;
        }
        // The first chunk of each message is covered by the socket's own share of the budget
        // (its read buffer), so small messages - a join, an ICE candidate - never wait on the
        // arena, even while tricklers have spent it.
        let held = this.charge.held();
        let free = (this.chunk as u64).saturating_sub(held);
        let want = if free > 0 {
            (buf.remaining() as u64).min(free)
        } else {
            (buf.remaining() as u64).min(this.chunk as u64)
        };
        let charged = if free > 0 { 0 } else { want };
        if charged > 0 && !this.charge.budget.in_flight.try_acquire(charged) {
            // Spent: leave the bytes in the kernel and look again shortly.
            let mut pause = Box::pin(tokio::time::sleep(RETRY));
            let _ = pause.as_mut().poll(cx);
            this.pause = Some(pause);
            return Poll::Pending;
        }
        let filled_before = buf.filled().len();
        let result = {
            let limit = want as usize;
            let mut limited = buf.take(limit);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
            let got = limited.filled().len();
            // SAFETY: `limited` wrote `got` initialized bytes at the start of `buf`'s unfilled part.
            unsafe { buf.assume_init(got) };
            buf.set_filled(filled_before + got);
            polled
        };
        let got = (buf.filled().len() - filled_before) as u64;
        // Keep what was read, give back what was not.
        if charged > 0 {
            this.charge.budget.in_flight.release(charged - got);
            this.charge.charged.fetch_add(got, Ordering::AcqRel);
        }
        if got > 0 {
            this.charge.held.fetch_add(got, Ordering::AcqRel);
            if this.deadline.is_none() {
                let mut deadline = Box::pin(tokio::time::sleep(this.limit));
                let _ = deadline.as_mut().poll(cx);
                this.deadline = Some(deadline);
            }
        }
        result
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
    use crate::limits::Limits;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn tiny_budget(in_flight_bytes: u64) -> Arc<Budget> {
        let mut budget = Budget::new(&Limits::shipped());
        budget.in_flight = crate::budget::Arena::new("in_flight", in_flight_bytes);
        Arc::new(budget)
    }

    #[tokio::test]
    async fn reads_are_charged_until_settled_and_pause_when_spent() {
        let budget = tiny_budget(8);
        let (mut tx, rx) = tokio::io::duplex(64);
        let charge = Charge::new(budget.clone());
        let mut io = ChargedIo::new(rx, charge.clone(), 4, Duration::from_secs(10));
        tx.write_all(b"0123456789abcdef").await.unwrap();
        let mut buf = [0u8; 12];
        io.read_exact(&mut buf).await.unwrap();
        // The first chunk (4 bytes) rides on the socket's own share; the next 8 are charged.
        assert_eq!(budget.in_flight.used(), 8, "eight bytes held");
        // The arena is spent: the next read waits instead of growing.
        let mut more = [0u8; 4];
        let blocked =
            tokio::time::timeout(Duration::from_millis(120), io.read_exact(&mut more)).await;
        assert!(blocked.is_err(), "reading paused while the arena is spent");
        charge.settle();
        assert_eq!(budget.in_flight.used(), 0);
        io.read_exact(&mut more).await.unwrap();
        assert_eq!(&more, b"cdef");
        assert_eq!(
            budget.in_flight.used(),
            0,
            "the first chunk after settling is free again"
        );
    }

    #[tokio::test]
    async fn a_message_that_trickles_past_its_deadline_is_cut() {
        let budget = tiny_budget(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(64);
        let charge = Charge::new(budget.clone());
        let mut io = ChargedIo::new(rx, charge, 1024, Duration::from_millis(100));
        tx.write_all(b"a").await.unwrap();
        let mut one = [0u8; 1];
        io.read_exact(&mut one).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.write_all(b"b").await.unwrap();
        let err = io.read_exact(&mut one).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
