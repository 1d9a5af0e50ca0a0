//! Charges the bytes of partly received messages to the in-flight arena.
//!
//! tungstenite gathers a message in memory until it is complete, up to the 1 MiB cap. Two
//! thousand sockets that each trickle an almost-1 MiB frame would hold 2 GB that no per-socket
//! limit sees. [`ChargedIo`] sits under the WebSocket: every byte read is charged to the global
//! in-flight arena until the session has a complete message in hand (it then calls
//! [`Charge::settle`]). When the arena is spent, reading *pauses* (the socket's bytes wait in
//! the kernel, not in our heap) and resumes as other messages complete. A message that has
//! begun must also finish within a deadline, so a trickler cannot hold its share forever.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Set once the socket has a seat. Before that it may not draw on the arena at all: a join
    /// fits in the first chunk, and 2,000 sockets that never join must not be able to spend the
    /// arena that joined participants' offers need (under a 64 MiB budget they did, and honest
    /// participants waited on paused reads until the heartbeat dropped them).
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
    pub fn new(budget: Arc<Budget>) -> Arc<Charge> {
        Arc::new(Charge {
            budget,
            held: AtomicU64::new(0),
            charged: AtomicU64::new(0),
            joined: AtomicBool::new(false),
        })
    }

    /// The socket has a seat: its messages may now be as long as the frame cap.
    pub fn set_joined(&self) {
        self.joined.store(true, Ordering::Release);
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

/// Where the byte stream from the client stands, frame by frame (RFC 6455 section 5.2).
#[derive(Debug)]
enum Scan {
    /// At a frame boundary: gathering the header (2 to 14 bytes) before anyone sees it.
    Header(heapless::Vec<u8, 14>),
    /// Passing a frame's payload through; this many bytes are left.
    Stream(u64),
    /// Gathering a large frame whole before tungstenite sees its header; this many are left.
    Gather(u64),
}

/// The total header length once its first two bytes are known.
fn header_len(first_two: &[u8]) -> usize {
    let ext = match first_two[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if first_two[1] & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

/// The payload length a complete header declares.
fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => u64::from_be_bytes(header[2..10].try_into().unwrap_or([0xff; 8])),
        n => u64::from(n),
    }
}

/// One piece of the byte stream ready for tungstenite.
struct Piece {
    bytes: Vec<u8>,
    /// The last piece of a frame: a read stops after it.
    ends_frame: bool,
}

/// An I/O stream whose reads are charged to the in-flight arena.
///
/// It also keeps large frames from tungstenite until they are whole: tungstenite reserves a
/// frame's declared length as soon as it parses the header, so a header promising 1 MiB followed
/// by a trickle would make every trickler hold a 1 MiB allocation that no arena sees (2,000 of
/// them: 2 GB of heap, and the address space of a 32-bit Pi). Frames longer than `fragment`
/// are gathered here instead, in chunks charged as they arrive, and handed over complete.
///
/// And it keeps tungstenite's read buffer small for the socket's whole life. That buffer never
/// shrinks: one 4 KiB offer would leave every socket holding 8 KiB until it closes, which was
/// the largest single item in a participant's memory (docs/BENCHMARKS.md, "Where the memory
/// goes"). So a gathered data frame is handed over as a fragmented message of frames no longer
/// than `fragment` (RFC 6455 section 5.4; tungstenite joins them, as it would a browser's), and
/// a read never returns bytes past the end of a frame: then the buffer, `chunk` bytes, always
/// has room for the next frame without growing.
pub struct ChargedIo<T> {
    inner: T,
    charge: Arc<Charge>,
    /// Largest single read: reading never overshoots the arena by more than this.
    chunk: usize,
    /// Longest frame payload handed to tungstenite as it came; longer data frames are split.
    fragment: usize,
    /// Frames above this are refused by tungstenite anyway; their headers pass at once.
    max_frame: u64,
    /// Fires when the message now being received has taken too long; armed by its first byte.
    deadline: Option<Pin<Box<Sleep>>>,
    limit: Duration,
    pause: Option<Pin<Box<Sleep>>>,
    scan: Scan,
    /// Bytes ready for tungstenite, in arrival order (the front piece from `offset`).
    ready: VecDeque<Piece>,
    offset: usize,
    /// A large frame being gathered: its header and the payload so far.
    gather: Vec<Vec<u8>>,
    eof: bool,
}

impl<T> ChargedIo<T> {
    pub fn new(inner: T, charge: Arc<Charge>, chunk: usize, deadline: Duration) -> ChargedIo<T> {
        ChargedIo {
            inner,
            charge,
            chunk,
            // A third of the buffer, less the largest header. tungstenite reserves a frame's
            // length on top of the payload it already holds (2 x the frame), and moves bytes to
            // the front of its buffer only when they do not overlap; a frame of a third fits
            // wherever in the buffer the one before it ended.
            fragment: (chunk / 3).saturating_sub(16).max(1),
            max_frame: u64::MAX,
            deadline: None,
            limit: deadline,
            pause: None,
            scan: Scan::Header(heapless::Vec::new()),
            ready: VecDeque::new(),
            offset: 0,
            gather: Vec::new(),
            eof: false,
        }
    }

    /// The frame cap given to tungstenite, so over-long headers reach it at once to be refused.
    pub fn with_max_frame(mut self, max_frame: u64) -> ChargedIo<T> {
        self.max_frame = max_frame;
        self
    }

    /// Sorts freshly read bytes into "ready for tungstenite" and "held back", frame by frame.
    fn sort(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.scan {
                Scan::Header(header) => {
                    let need = if header.len() < 2 {
                        2
                    } else {
                        header_len(header)
                    };
                    let take = (need - header.len()).min(data.len());
                    let _ = header.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if header.len() < 2 || header.len() < header_len(header) {
                        continue;
                    }
                    let len = payload_len(header);
                    let bytes = header.to_vec();
                    if len > self.fragment as u64 && len <= self.max_frame {
                        self.gather.push(bytes);
                        self.scan = Scan::Gather(len);
                    } else {
                        self.ready.push_back(Piece {
                            bytes,
                            ends_frame: len == 0,
                        });
                        self.scan = if len == 0 {
                            Scan::Header(heapless::Vec::new())
                        } else {
                            Scan::Stream(len)
                        };
                    }
                }
                Scan::Stream(left) | Scan::Gather(left) => {
                    let take = (*left).min(data.len() as u64) as usize;
                    *left -= take as u64;
                    let done = *left == 0;
                    let gathering = matches!(self.scan, Scan::Gather(_));
                    if take > 0 {
                        let part = data[..take].to_vec();
                        if gathering {
                            self.gather.push(part);
                        } else {
                            self.ready.push_back(Piece {
                                bytes: part,
                                ends_frame: done,
                            });
                        }
                    }
                    data = &data[take..];
                    if done {
                        if gathering {
                            self.hand_over_gathered();
                        }
                        self.scan = Scan::Header(heapless::Vec::new());
                    }
                }
            }
        }
    }

    /// Moves a whole gathered frame to `ready`: a masked data frame as fragments of at most
    /// `fragment` bytes, anything else (a control frame, an unmasked frame) as it came, for
    /// tungstenite to judge.
    fn hand_over_gathered(&mut self) {
        let header = std::mem::take(&mut self.gather[0]);
        let opcode = header[0] & 0x0f;
        let masked = header[1] & 0x80 != 0;
        if opcode > 2 || !masked {
            self.gather[0] = header;
            let n = self.gather.len();
            for (i, bytes) in self.gather.drain(..).enumerate() {
                self.ready.push_back(Piece {
                    bytes,
                    ends_frame: i + 1 == n,
                });
            }
            return;
        }
        let key = &header[header.len() - 4..];
        let mut payload = Vec::with_capacity(self.gather[1..].iter().map(Vec::len).sum());
        for part in self.gather.drain(..).skip(1) {
            payload.extend_from_slice(&part);
        }
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= key[i & 3];
        }
        let count = payload.len().div_ceil(self.fragment);
        for (i, piece) in payload.chunks(self.fragment).enumerate() {
            // FIN only on the last; the first keeps the opcode (and any RSV bits, for
            // tungstenite to refuse), the rest are continuations.
            let fin = if i + 1 == count { header[0] & 0x80 } else { 0 };
            let op = if i == 0 { header[0] & 0x7f } else { 0 };
            let mut frame = Vec::with_capacity(piece.len() + 8);
            frame.push(fin | op);
            if piece.len() < 126 {
                frame.push(0x80 | piece.len() as u8);
            } else {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(piece.len() as u16).to_be_bytes());
            }
            // A zero mask key: the payload above is already unmasked.
            frame.extend_from_slice(&[0; 4]);
            frame.extend_from_slice(piece);
            self.ready.push_back(Piece {
                bytes: frame,
                ends_frame: true,
            });
        }
    }

    /// Copies ready bytes into `buf`, up to the end of one frame; false if there were none.
    fn deliver(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let mut any = false;
        while buf.remaining() > 0 {
            let Some(front) = self.ready.front() else {
                break;
            };
            let n = (front.bytes.len() - self.offset).min(buf.remaining());
            buf.put_slice(&front.bytes[self.offset..self.offset + n]);
            self.offset += n;
            any = true;
            if self.offset == front.bytes.len() {
                let ends_frame = front.ends_frame;
                self.ready.pop_front();
                self.offset = 0;
                if ends_frame {
                    break;
                }
            }
        }
        // A burst of small frames grows the queue; an idle socket should not keep it.
        if self.ready.is_empty() && self.ready.capacity() > 4 {
            self.ready = VecDeque::new();
        }
        any
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ChargedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.deliver(buf) || this.eof {
                return Poll::Ready(Ok(()));
            }
            ready!(this.poll_fill(cx))?;
        }
    }
}

impl<T: AsyncRead + Unpin> ChargedIo<T> {
    /// Reads one chunk from the socket (charged, paused when the arena is spent, under the
    /// message deadline) and sorts it.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.charge.held() == 0 {
            self.deadline = None;
        } else if let Some(deadline) = self.deadline.as_mut() {
            // Polled here so that the timer wakes this task even while the peer sends nothing.
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "a message took too long to arrive",
                )));
            }
        }
        if let Some(pause) = self.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
            self.pause = None;
        }
        // The first chunk of each message is covered by the socket's own share of the budget
        // (its read buffer), so small messages - a join, an ICE candidate - never wait on the
        // arena, even while tricklers have spent it.
        let held = self.charge.held();
        let free = (self.chunk as u64).saturating_sub(held);
        if free == 0 && !self.charge.joined.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                TooLargeBeforeJoin,
            )));
        }
        let want = if free > 0 { free } else { self.chunk as u64 };
        let charged = if free > 0 { 0 } else { want };
        if charged > 0 && !self.charge.budget.in_flight.try_acquire(charged) {
            // Spent: leave the bytes in the kernel and look again shortly.
            let mut pause = Box::pin(tokio::time::sleep(RETRY));
            let _ = pause.as_mut().poll(cx);
            self.pause = Some(pause);
            return Poll::Pending;
        }
        let mut space = vec![0u8; want as usize];
        let mut read = ReadBuf::new(&mut space);
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut read);
        let got = read.filled().len();
        // Keep what was read, give back what was not.
        if charged > 0 {
            self.charge.budget.in_flight.release(charged - got as u64);
            self.charge.charged.fetch_add(got as u64, Ordering::AcqRel);
        }
        match polled {
            Poll::Ready(Ok(())) if got == 0 => {
                self.eof = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(())) => {
                self.charge.held.fetch_add(got as u64, Ordering::AcqRel);
                if self.deadline.is_none() {
                    let mut deadline = Box::pin(tokio::time::sleep(self.limit));
                    let _ = deadline.as_mut().poll(cx);
                    self.deadline = Some(deadline);
                }
                self.sort(&space[..got]);
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
    use crate::limits::Limits;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn tiny_budget(in_flight_bytes: u64) -> Arc<Budget> {
        let mut budget = Budget::new(&Limits::shipped());
        budget.in_flight = crate::budget::Arena::new("in_flight", in_flight_bytes);
        Arc::new(budget)
    }

    /// An unmasked text frame header for `len` (< 126) payload bytes.
    fn header(len: u8) -> [u8; 2] {
        [0x81, len]
    }

    #[tokio::test]
    async fn reads_are_charged_until_settled_and_pause_when_spent() {
        let budget = tiny_budget(8);
        let (mut tx, rx) = tokio::io::duplex(64);
        let charge = Charge::new(budget.clone());
        charge.set_joined();
        // Every frame passes straight through (none is "large" under a 0-byte frame cap).
        let mut io =
            ChargedIo::new(rx, charge.clone(), 4, Duration::from_secs(10)).with_max_frame(0);
        tx.write_all(&header(16)).await.unwrap();
        tx.write_all(b"0123456789abcdef").await.unwrap();
        let mut buf = [0u8; 12];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf[2..], b"0123456789");
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
        assert_eq!(&more, b"abcd");
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
        tx.write_all(&header(5)).await.unwrap();
        tx.write_all(b"a").await.unwrap();
        let mut three = [0u8; 3];
        io.read_exact(&mut three).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.write_all(b"b").await.unwrap();
        let mut one = [0u8; 1];
        let err = io.read_exact(&mut one).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_large_frame_is_handed_over_only_when_whole() {
        let budget = tiny_budget(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(256);
        let charge = Charge::new(budget.clone());
        charge.set_joined();
        let mut io = ChargedIo::new(rx, charge, 4, Duration::from_secs(10)).with_max_frame(100);
        // A small frame passes at once; a 10-byte one (over the 4-byte chunk) is held back,
        // header included, while it trickles.
        tx.write_all(&header(3)).await.unwrap();
        tx.write_all(b"hi!").await.unwrap();
        tx.write_all(&header(10)).await.unwrap();
        tx.write_all(b"01234").await.unwrap();
        let mut small = [0u8; 5];
        io.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"\x81\x03hi!");
        let mut one = [0u8; 1];
        let waiting =
            tokio::time::timeout(Duration::from_millis(100), io.read_exact(&mut one)).await;
        assert!(
            waiting.is_err(),
            "not even the header of the large frame yet"
        );
        tx.write_all(b"56789").await.unwrap();
        // A header over the frame cap is not held: tungstenite refuses it on sight.
        tx.write_all(&[0x81, 126, 0x01, 0x00]).await.unwrap();
        let mut large = [0u8; 12];
        io.read_exact(&mut large).await.unwrap();
        assert_eq!(&large, b"\x81\x0a0123456789");
        let mut refused = [0u8; 4];
        io.read_exact(&mut refused).await.unwrap();
        assert_eq!(refused, [0x81, 126, 0x01, 0x00]);
    }

    #[tokio::test]
    async fn without_a_seat_a_message_may_not_pass_one_chunk() {
        let budget = tiny_budget(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(256);
        let mut io = ChargedIo::new(rx, Charge::new(budget.clone()), 8, Duration::from_secs(10))
            .with_max_frame(0);
        tx.write_all(&header(20)).await.unwrap();
        tx.write_all(b"0123456789abcdefghij").await.unwrap();
        let mut buf = [0u8; 22];
        let err = io.read_exact(&mut buf).await.unwrap_err();
        assert!(err.get_ref().is_some_and(|e| e.is::<TooLargeBeforeJoin>()));
        assert_eq!(budget.in_flight.used(), 0, "nothing was charged");
    }

    #[tokio::test]
    async fn a_read_stops_at_the_end_of_a_frame() {
        let budget = tiny_budget(1 << 20);
        let (mut tx, rx) = tokio::io::duplex(256);
        let mut io = ChargedIo::new(rx, Charge::new(budget), 64, Duration::from_secs(10));
        tx.write_all(b"\x81\x02hi\x81\x03you").await.unwrap();
        let mut buf = [0u8; 64];
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"\x81\x02hi", "only the first frame");
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"\x81\x03you");
    }

    /// A browser's 5 KB message, with multi-byte characters across the cut points, reaches the
    /// server whole and unchanged through real tungstenite on both ends, and so does the
    /// server's fragmented answer.
    #[tokio::test]
    async fn long_messages_cross_as_fragments_unchanged() {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::WebSocketStream;

        let budget = tiny_budget(1 << 20);
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let charge = Charge::new(budget);
        charge.set_joined();
        let io = ChargedIo::new(server_io, charge, 2048, Duration::from_secs(10))
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
    }

    #[test]
    fn headers_of_every_length_form_parse() {
        assert_eq!(header_len(&[0x81, 0x05]), 2);
        assert_eq!(header_len(&[0x81, 0x85]), 6);
        assert_eq!(header_len(&[0x81, 0xfe]), 8);
        assert_eq!(header_len(&[0x81, 0xff]), 14);
        assert_eq!(payload_len(&[0x81, 0x85, 0, 0, 0, 0]), 5);
        assert_eq!(payload_len(&[0x81, 0xfe, 0x01, 0x00, 0, 0, 0, 0]), 256);
        let mut long = vec![0x81, 0xff];
        long.extend_from_slice(&1_000_000u64.to_be_bytes());
        assert_eq!(payload_len(&long), 1_000_000);
    }
}
