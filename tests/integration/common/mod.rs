//! A real server on a loopback port and real WebSocket clients, shared by the integration tests.
#![allow(dead_code)]

pub mod binary;
pub mod https;
pub mod turn;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use videomeet::Config;

/// How long a test waits for something that should happen at once.
pub const SOON: Duration = Duration::from_secs(5);

pub struct Server {
    pub addr: SocketAddr,
    /// The built-in STUN/TURN server's port (UDP and TCP), when started with one.
    pub stun: Option<u16>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Starts `serve_on` on 127.0.0.1:0 with the shipped budget changed by `sets` (`section.key`, value).
    pub async fn start(sets: &[(&str, &str)]) -> Server {
        Server::start_with(Config::default(), sets).await
    }

    /// Like [`Server::start_with`], with the built-in STUN/TURN server on another loopback port.
    pub async fn start_with_relay(config: Config, sets: &[(&str, &str)]) -> Server {
        let sockets = videomeet::turn::server::Sockets::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Server::start_on(config, sets, Some(sockets)).await
    }

    /// Like [`Server::start`] with a hand-made config (trusted proxies, origins, ...).
    pub async fn start_with(config: Config, sets: &[(&str, &str)]) -> Server {
        Server::start_on(config, sets, None).await
    }

    pub async fn start_on(
        mut config: Config,
        sets: &[(&str, &str)],
        stun: Option<videomeet::turn::server::Sockets>,
    ) -> Server {
        for (key, value) in sets {
            config
                .limits
                .set(key, value)
                .expect("test sets a known key");
        }
        config.limits.check().expect("test budget is consistent");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let stun_port = stun.as_ref().map(|s| s.port());
        let listeners = videomeet::Listeners {
            http: Some(listener),
            https: None,
            stun,
        };
        let task = tokio::spawn(videomeet::serve_on(listeners, config, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stun: stun_port,
            stop: Some(stop),
            task,
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("server stops in time")
            .expect("server task did not panic")
            .expect("serve returned Ok");
    }

    pub fn ws_url(&self, room: &str) -> String {
        format!("ws://{}/ws/{room}", self.addr)
    }

    pub async fn client(&self, room: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(self.ws_url(room))
            .await
            .expect("websocket connects");
        Client { ws }
    }

    /// A WebSocket client from the loopback address `ip`.
    pub async fn client_from(&self, ip: impl Into<std::net::Ipv4Addr>, room: &str) -> Client {
        let stream = connect_from(ip.into(), self.addr).await.expect("connects");
        let (ws, _) =
            tokio_tungstenite::client_async(self.ws_url(room), MaybeTlsStream::Plain(stream))
                .await
                .expect("websocket connects");
        Client { ws }
    }

    /// Joins `room` as `name` with a client id derived from the name.
    pub async fn join(&self, room: &str, name: &str) -> (Client, Value) {
        let mut c = self.client(room).await;
        let joined = c.join(name, &client_id(name), None).await;
        (c, joined)
    }

    /// One raw HTTP/1.1 request; returns status, headers (lower-cased names) and body bytes.
    pub async fn http(&self, request: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        http_at(self.addr, request, SOON).await
    }

    pub async fn get(&self, path: &str, extra: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        self.http(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}\r\n",
            self.addr
        ))
        .await
    }

    /// The value of one metric line, such as `videomeet_rooms`.
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, _, body) = self.get("/metrics", "").await;
        let text = String::from_utf8(body).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("metric {name} missing in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// One raw HTTP/1.1 request to `addr`, answered within `limit`; returns status, headers
/// (lower-cased names) and body bytes.
pub async fn http_at(
    addr: SocketAddr,
    request: &str,
    limit: Duration,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .unwrap();
    parse_response(&raw)
}

pub fn client_id(name: &str) -> String {
    format!("client-{name:0>8}")
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn parse_response(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if header(&headers, "transfer-encoding") == Some("chunked") {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A protocol client over a real WebSocket.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        Client { ws }
    }
}

/// What `recv` saw instead of a text message.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

impl Client {
    pub async fn send(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    pub async fn join(&mut self, name: &str, client: &str, token: Option<&str>) -> Value {
        self.send(json!({"type":"join","name":name,"client":client,"token":token,"audio":true,"video":true}))
            .await;
        let joined = self.recv().await;
        assert_eq!(joined["type"], "joined", "{joined}");
        joined
    }

    /// The next JSON message; panics if none comes soon or the socket ends.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Ok(v) => v,
            Err(e) => panic!("expected a message, socket ended: {e:?}"),
        }
    }

    /// The next JSON message, or how the socket ended.
    pub async fn next(&mut self) -> Result<Value, Ended> {
        loop {
            let frame = tokio::time::timeout(SOON, self.ws.next())
                .await
                .expect("a frame arrives in time");
            match frame {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(frame))) => {
                    return Err(Ended::Closed(frame.map(|f| u16::from(f.code))))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(Ended::Dropped),
            }
        }
    }

    /// Reads until the socket ends; returns the close code and the messages before it.
    pub async fn until_closed(&mut self) -> (Option<u16>, Vec<Value>) {
        let mut seen = Vec::new();
        loop {
            match self.next().await {
                Ok(v) => seen.push(v),
                Err(Ended::Closed(code)) => return (code, seen),
                Err(Ended::Dropped) => return (None, seen),
            }
        }
    }

    /// Asserts that no text message arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        self.pings_over(wait).await;
    }

    /// Reads for `wait`, answering pings (tungstenite does): panics on a text message or the
    /// socket's end; returns how many pings came.
    pub async fn pings_over(&mut self, wait: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + wait;
        let mut pings = 0;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return pings,
                Ok(Some(Ok(Message::Text(t)))) => panic!("unexpected message {t}"),
                Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
                Ok(Some(Ok(_))) => continue,
                Ok(other) => panic!("socket ended: {other:?}"),
            }
        }
    }

    pub async fn close(&mut self) {
        let _ = self
            .ws
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
    }
}

impl Server {
    /// A WebSocket handshake done by hand, leaving the raw TCP stream for hand-made frames.
    pub async fn raw_ws(&self, room: &str) -> TcpStream {
        self.raw_ws_with(room, "").await
    }

    /// [`Server::raw_ws`] that has joined `room` as `name` (a seat: it may send long messages).
    pub async fn raw_ws_joined(&self, room: &str, name: &str) -> TcpStream {
        let mut stream = self.raw_ws(room).await;
        let join = serde_json::json!({"type":"join","name":name,"client":client_id(name),"audio":true,"video":true}).to_string();
        stream
            .write_all(&masked_text_header(join.len() as u64))
            .await
            .unwrap();
        stream.write_all(join.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("\"joined\"") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before joined");
            seen.extend_from_slice(&buf[..n]);
        }
        stream
    }

    /// [`Server::raw_ws`] with extra request header lines (each ending in `\r\n`).
    pub async fn raw_ws_with(&self, room: &str, extra: &str) -> TcpStream {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let request = upgrade_request(self.addr, room, "Upgrade", extra);
        match upgrade(stream, &request).await {
            Ok(stream) => stream,
            Err(head) => panic!("{}", String::from_utf8_lossy(&head)),
        }
    }
}

/// A WebSocket upgrade request for `/ws/{room}` with this `Connection` header and extra header
/// lines (each ending in `\r\n`).
pub fn upgrade_request(host: SocketAddr, room: &str, connection: &str, extra: &str) -> String {
    format!(
        "GET /ws/{room} HTTP/1.1\r\nHost: {host}\r\nConnection: {connection}\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// The header of a masked client text frame of `len` payload bytes (mask key 0, so the payload
/// goes as it is).
pub fn masked_text_header(len: u64) -> Vec<u8> {
    let mut h = vec![0x81u8];
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len < 65536 {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// A masked client frame (mask key 0) with this first byte (FIN and opcode) and payload.
pub fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = masked_text_header(payload.len() as u64);
    f[0] = first;
    f.extend_from_slice(payload);
    f
}

/// The loopback address of attacker number `n` (127.2.x.y): distinct hosts to the per-address
/// limits when the server runs with `limit_loopback`.
pub fn attacker_ip(n: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(127, 2, (n / 250) as u8, (n % 250 + 1) as u8)
}

/// A TCP connection to `server` from the loopback address `ip`.
pub async fn connect_from(ip: std::net::Ipv4Addr, server: SocketAddr) -> Option<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(ip.into(), 0)).ok()?;
    socket.connect(server).await.ok()
}

/// A WebSocket handshake by hand from `ip`; `None` if refused (the status is not 101).
pub async fn raw_ws_from(
    ip: std::net::Ipv4Addr,
    server: SocketAddr,
    room: &str,
) -> Option<TcpStream> {
    let stream = connect_from(ip, server).await?;
    upgrade(stream, &upgrade_request(server, room, "Upgrade", ""))
        .await
        .ok()
}

/// Sends an upgrade `request` and reads the response head byte by byte (so nothing after it is
/// taken from the socket): the stream on 101, else the head (empty if the socket failed first).
async fn upgrade(mut stream: TcpStream, request: &str) -> Result<TcpStream, Vec<u8>> {
    let mut head = Vec::new();
    if stream.write_all(request.as_bytes()).await.is_err() {
        return Err(head);
    }
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read_exact(&mut byte).await.is_err() {
            return Err(head);
        }
        head.push(byte[0]);
    }
    if head.starts_with(b"HTTP/1.1 101") {
        Ok(stream)
    } else {
        Err(head)
    }
}

/// Sends a join on a raw WebSocket and reads until `joined` (true) or an error or close (false).
pub async fn raw_join(stream: &mut TcpStream, name: &str, client: &str) -> bool {
    let join =
        json!({"type":"join","name":name,"client":client,"audio":false,"video":false}).to_string();
    if stream
        .write_all(&masked_frame(0x81, join.as_bytes()))
        .await
        .is_err()
    {
        return false;
    }
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen);
        if text.contains("\"joined\"") {
            return true;
        }
        if text.contains("\"error\"") {
            return false;
        }
        match tokio::time::timeout(SOON, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
}

/// Tests that load the two cores on purpose (the attacks, the flood) run one at a time: the heap
/// counter is process-wide and they share one binary, so side by side they would blur each
/// other's figures and deadlines. Lighter tests run beside them as usual.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}
