//! One participant's connection: TCP from its own loopback address, the WebSocket handshake
//! (and the Socket.io one in that mode), sending protocol objects and receiving them, with the
//! failures named so the errors table can tell a refused connect from a server `error`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::proto::{Frame, Proto};
use crate::stats::Stats;

/// How long one TCP connect or one handshake may take before it counts as failed (the kernel
/// retransmits a dropped SYN after 1 s, then 3 s: two retransmits fit).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);
/// How long the server may take to answer `join`.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the server is and how it frames messages.
#[derive(Clone, Copy)]
pub struct Target {
    pub addr: SocketAddr,
    pub proto: Proto,
}

/// The source address of connection `i` of a `block`: 127.{block}.0.1 onwards, 250 per /24,
/// 62,500 per block (then the next block). Distinct addresses keep each one's ephemeral ports
/// and per-address limits apart, as real participants on their own hosts would be; the
/// scenarios use different blocks for different populations.
pub fn source(block: u8, i: usize) -> SocketAddr {
    let a = block.wrapping_add((i / 62_500) as u8).max(1);
    let b = ((i / 250) % 250) as u8;
    let c = (i % 250 + 1) as u8;
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, a, b, c), 0))
}

/// Why a connection did not get where it was going.
#[derive(Debug)]
pub enum Failure {
    /// The TCP connect failed (refused, reset, timed out) even after the retries.
    Connect(String),
    /// The HTTP upgrade (or the Socket.io open) failed: `http_503`, `io`, `timeout`, ...
    Handshake(String, String),
    /// The server closed the socket before we were done, with this close code.
    Closed(Option<u16>),
    /// The server answered with an `error` (already counted as `error:CODE` when received).
    Refused(String),
    /// Reading or writing failed.
    Io(String),
    /// Something expected did not arrive in time.
    Timeout(&'static str),
}

impl Failure {
    pub fn kind(&self) -> String {
        match self {
            Failure::Connect(_) => "connect".into(),
            Failure::Handshake(k, _) => format!("handshake:{k}"),
            Failure::Closed(Some(c)) => format!("closed_early:{c}"),
            Failure::Closed(None) => "closed_early:none".into(),
            Failure::Refused(code) => format!("error:{code}"),
            Failure::Io(_) => "io".into(),
            Failure::Timeout(what) => format!("timeout:{what}"),
        }
    }

    /// The example kept in the errors table.
    pub fn detail(&self) -> String {
        match self {
            Failure::Connect(d) | Failure::Io(d) | Failure::Handshake(_, d) => d.clone(),
            Failure::Closed(_) | Failure::Refused(_) | Failure::Timeout(_) => String::new(),
        }
    }

    /// Counts this failure, unless it is a server `error` that was counted on arrival.
    pub fn record(&self, stats: &Stats) {
        if !matches!(self, Failure::Refused(_)) {
            stats.error(&self.kind(), || self.detail());
        }
    }
}

pub enum Incoming {
    Msg(Value),
    Closed(Option<u16>),
}

/// Connection options beyond the address.
#[derive(Clone, Copy, Default)]
pub struct OpenOpts {
    /// Retries of a failed connect or handshake, with exponential backoff.
    pub retries: u32,
    /// SO_RCVBUF before connecting: the flood's non-readers use a small one so the server's
    /// queue to them fills after kilobytes instead of after megabytes of kernel buffer.
    pub rcvbuf: Option<u32>,
}

pub struct Conn {
    ws: WebSocketStream<TcpStream>,
    proto: Proto,
    stats: Arc<Stats>,
    /// Set once the server sent an `error` on this socket: its close then is the consequence,
    /// not a separate failure.
    pub saw_error: bool,
}

impl Conn {
    /// Connects and upgrades, retrying I/O failures (a SYN lost to a full backlog, a reset)
    /// with backoff; refusals the server means (an HTTP 503 or 429) are not retried.
    pub async fn open(
        target: Target,
        room: &str,
        src: SocketAddr,
        opts: OpenOpts,
        stats: &Arc<Stats>,
    ) -> Result<Conn, Failure> {
        let mut attempt = 0;
        loop {
            match Conn::open_once(target, room, src, opts, stats).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    let retryable = match &e {
                        Failure::Connect(_) => true,
                        Failure::Handshake(k, _) => k == "io" || k == "timeout",
                        _ => false,
                    };
                    if !retryable || attempt >= opts.retries {
                        return Err(e);
                    }
                    stats.connect_retries.fetch_add(1, Ordering::Relaxed);
                    // 100 ms, 200 ms, ... up to 3.2 s, spread by the source address so the
                    // retries of one burst do not arrive as a burst again.
                    let jitter = match src {
                        SocketAddr::V4(a) => u64::from(a.ip().octets()[3]) % 50,
                        SocketAddr::V6(_) => 0,
                    };
                    let ms = (100u64 << attempt.min(5)) + jitter * (attempt as u64 + 1);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn open_once(
        target: Target,
        room: &str,
        src: SocketAddr,
        opts: OpenOpts,
        stats: &Arc<Stats>,
    ) -> Result<Conn, Failure> {
        let tcp = connect_from(src, target.addr, opts.rcvbuf).await?;
        let url = target.proto.url(target.addr, room);
        let (ws, _) = match timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::client_async_with_config(url, tcp, Some(ws_config())),
        )
        .await
        {
            Err(_) => return Err(Failure::Handshake("timeout".into(), String::new())),
            Ok(Err(tungstenite::Error::Http(resp))) => {
                return Err(Failure::Handshake(
                    format!("http_{}", resp.status().as_u16()),
                    String::new(),
                ))
            }
            Ok(Err(tungstenite::Error::Io(e))) => {
                return Err(Failure::Handshake("io".into(), e.to_string()))
            }
            Ok(Err(e)) => return Err(Failure::Handshake("protocol".into(), e.to_string())),
            Ok(Ok(pair)) => pair,
        };
        let mut conn = Conn {
            ws,
            proto: target.proto,
            stats: stats.clone(),
            saw_error: false,
        };
        if target.proto == Proto::SocketIo {
            conn.socketio_handshake().await?;
        }
        Ok(conn)
    }

    /// Engine.IO open, then connecting the default namespace.
    async fn socketio_handshake(&mut self) -> Result<(), Failure> {
        let hs = |why: &str| Failure::Handshake("socketio".into(), why.into());
        let mut opened = false;
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(Failure::Handshake("timeout".into(), "socket.io".into())),
                Ok(Some(Ok(Message::Text(t)))) => t,
                Ok(Some(Ok(_))) => continue,
                Ok(_) => return Err(hs("closed during the Engine.IO open")),
            };
            match self.proto.decode(&frame) {
                Frame::Open if !opened => {
                    opened = true;
                    self.send_raw(Proto::CONNECT.into()).await?;
                }
                Frame::Connected if opened => return Ok(()),
                Frame::Ping => self.send_raw(Proto::PONG.into()).await?,
                _ => {
                    return Err(hs(&format!(
                        "unexpected `{}`",
                        &frame[..frame.len().min(40)]
                    )))
                }
            }
        }
    }

    async fn send_raw(&mut self, text: String) -> Result<(), Failure> {
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| Failure::Io(e.to_string()))
    }

    /// Sends one protocol object given as JSON text.
    pub async fn send(&mut self, json: &str) -> Result<(), Failure> {
        let text = self.proto.wrap(json);
        self.send_raw(text).await
    }

    /// Sends several objects with one flush (an offer and its ten candidates go out together,
    /// as a browser's would).
    pub async fn send_all(&mut self, jsons: &[String]) -> Result<(), Failure> {
        for j in jsons {
            self.ws
                .feed(Message::text(self.proto.wrap(j)))
                .await
                .map_err(|e| Failure::Io(e.to_string()))?;
        }
        self.ws
            .flush()
            .await
            .map_err(|e| Failure::Io(e.to_string()))
    }

    /// The next protocol object, or the close. Answers Socket.io pings on the way (tungstenite
    /// answers WebSocket pings by itself while we read); counts every server `error` by code.
    pub async fn recv(&mut self) -> Result<Incoming, Failure> {
        loop {
            let text = match self.ws.next().await {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Incoming::Closed(frame.map(|f| u16::from(f.code))))
                }
                Some(Ok(_)) => continue,
                Some(Err(tungstenite::Error::ConnectionClosed))
                | Some(Err(tungstenite::Error::AlreadyClosed))
                | None => return Ok(Incoming::Closed(None)),
                Some(Err(e)) => return Err(Failure::Io(e.to_string())),
            };
            match self.proto.decode(&text) {
                Frame::Msg(v) => {
                    if v["type"] == "error" {
                        self.saw_error = true;
                        let code = v["code"].as_str().unwrap_or("?").to_string();
                        self.stats
                            .error(&format!("error:{code}"), || v["message"].to_string());
                    }
                    return Ok(Incoming::Msg(v));
                }
                Frame::Ping => self.send_raw(Proto::PONG.into()).await?,
                Frame::Disconnect => return Ok(Incoming::Closed(None)),
                Frame::Open | Frame::Connected | Frame::Other => {}
            }
        }
    }

    /// Sends `join` and waits for `joined`; a refusal comes back as [`Failure::Refused`].
    pub async fn join(&mut self, join_json: &str) -> Result<Value, Failure> {
        self.send(join_json).await?;
        let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Err(_) => return Err(Failure::Timeout("joined")),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Incoming::Closed(code))) => return Err(Failure::Closed(code)),
                Ok(Ok(Incoming::Msg(v))) => match v["type"].as_str() {
                    Some("joined") => return Ok(v),
                    Some("error") => {
                        return Err(Failure::Refused(
                            v["code"].as_str().unwrap_or("?").to_string(),
                        ))
                    }
                    _ => {}
                },
            }
        }
    }

    /// Sends `leave` and waits for the server's close (1000 expected).
    pub async fn leave(mut self) -> Result<(), Failure> {
        self.send(r#"{"type":"leave"}"#).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Err(_) => return Err(Failure::Timeout("close_after_leave")),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Incoming::Closed(Some(1000)))) => return Ok(()),
                // The Socket.io reference disconnects without a WebSocket close code.
                Ok(Ok(Incoming::Closed(None))) if self.proto == Proto::SocketIo => return Ok(()),
                Ok(Ok(Incoming::Closed(code))) => return Err(Failure::Closed(code)),
                Ok(Ok(Incoming::Msg(_))) => {}
            }
        }
    }

    /// Closes with a close frame (the server frees the seat at once).
    pub async fn close(mut self) {
        let _ = timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }

    /// Drops the socket without a close frame, as a lost network would: the server holds the
    /// seat for its owner to resume.
    pub fn abandon(self) {
        drop(self);
    }
}

/// Small read buffers: tungstenite allocates 128 KiB per socket by default, 1.3 GB for the
/// 10,000 of the largest run, on a machine the server under test shares.
fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default().read_buffer_size(16 * 1024)
}

/// A TCP connection from `src` to `dst`, within [`CONNECT_TIMEOUT`].
pub async fn connect_from(
    src: SocketAddr,
    dst: SocketAddr,
    rcvbuf: Option<u32>,
) -> Result<TcpStream, Failure> {
    let socket = TcpSocket::new_v4().map_err(|e| Failure::Connect(format!("socket: {e}")))?;
    if let Some(size) = rcvbuf {
        let _ = socket.set_recv_buffer_size(size);
    }
    socket
        .bind(src)
        .map_err(|e| Failure::Connect(format!("bind {src}: {e}")))?;
    let tcp = match timeout(CONNECT_TIMEOUT, socket.connect(dst)).await {
        Err(_) => return Err(Failure::Connect("timed out".into())),
        Ok(Err(e)) => return Err(Failure::Connect(e.to_string())),
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_distinct_loopback_addresses() {
        assert_eq!(source(1, 0).to_string(), "127.1.0.1:0");
        assert_eq!(source(1, 249).to_string(), "127.1.0.250:0");
        assert_eq!(source(1, 250).to_string(), "127.1.1.1:0");
        assert_eq!(source(1, 62_500).to_string(), "127.2.0.1:0");
        let all: std::collections::HashSet<_> = (0..10_000).map(|i| source(1, i)).collect();
        assert_eq!(all.len(), 10_000);
    }

    #[test]
    fn failure_kinds() {
        assert_eq!(Failure::Closed(Some(4003)).kind(), "closed_early:4003");
        assert_eq!(
            Failure::Handshake("http_503".into(), String::new()).kind(),
            "handshake:http_503"
        );
        assert_eq!(Failure::Timeout("joined").kind(), "timeout:joined");
    }
}
