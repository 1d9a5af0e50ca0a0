//! Gathers a socket's writes into one system call per flush.
//!
//! tungstenite writes every frame to its stream as soon as it is framed (its write buffer is
//! kept at zero, because that buffer never shrinks: see `http::upgrade`). On a busy socket that
//! is one `write` system call, and on loopback one trip through the whole TCP stack, per
//! message: at 60,000 relayed messages a second the server spent most of its CPU in the
//! kernel. [`Coalesce`] keeps the frames of one batch (the writer flushes after each batch)
//! and writes them together; the buffer is freed after each flush, so an idle socket holds
//! nothing. While bytes wait here they are still charged to the outbound arena (the writer
//! releases them only after the flush).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes gathered before they are written without waiting for the flush.
const GATHER: usize = 8 * 1024;

pub struct Coalesce<T> {
    inner: T,
    buf: Vec<u8>,
    /// How much of `buf` has been written already.
    written: usize,
}

impl<T> Coalesce<T> {
    pub fn new(inner: T) -> Coalesce<T> {
        Coalesce {
            inner,
            buf: Vec::new(),
            written: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Writes out everything gathered, then frees the buffer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.buf.len() + data.len() > GATHER {
            ready!(this.poll_drain(cx))?;
            if data.len() > GATHER {
                return Pin::new(&mut this.inner).poll_write(cx, data);
            }
        }
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Counts the writes that reach it.
    struct Counting {
        writes: usize,
        bytes: Vec<u8>,
    }

    impl AsyncWrite for Counting {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes += 1;
            self.bytes.extend_from_slice(data);
            Poll::Ready(Ok(data.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn small_writes_reach_the_socket_together_at_the_flush() {
        let mut io = Coalesce::new(Counting {
            writes: 0,
            bytes: Vec::new(),
        });
        for i in 0..50u8 {
            io.write_all(&[i; 100]).await.unwrap();
        }
        assert_eq!(io.inner.writes, 0, "nothing written before the flush");
        io.flush().await.unwrap();
        assert_eq!(io.inner.writes, 1);
        assert_eq!(io.inner.bytes.len(), 5000);
        assert_eq!(io.buf.capacity(), 0, "the buffer is freed");
        // Past the gathering size, bytes go out without waiting for a flush, in order.
        for _ in 0..100 {
            io.write_all(&[7; 100]).await.unwrap();
        }
        assert!(io.inner.writes >= 2);
        io.flush().await.unwrap();
        assert_eq!(io.inner.bytes.len(), 15_000);
        assert!(io.inner.bytes[5000..].iter().all(|&b| b == 7));
    }

    #[tokio::test]
    async fn reads_pass_through() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut io = Coalesce::new(b);
        a.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
    }
}
