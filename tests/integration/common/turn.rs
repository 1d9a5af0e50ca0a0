//! A small TURN client over UDP (or TCP) made of the server's own codec, to see each answer
//! exactly.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Mutex;
use videomeet::turn::codec::{self as stun, attr, Builder, Class, Message};

/// A TURN client over UDP made of the server's own codec; over TCP when made by
/// [`Peer::new_tcp`] (then `sock` is unused).
pub struct Peer {
    pub sock: UdpSocket,
    tcp: Option<Mutex<TcpStream>>,
    pub server: SocketAddr,
    user: String,
    key: [u8; 16],
    pub nonce: String,
}

impl Peer {
    pub async fn new(port: u16, user: &str, password: &str) -> Peer {
        Peer::new_from(std::net::Ipv4Addr::LOCALHOST, port, user, password).await
    }

    /// A client on loopback address `ip` (distinct hosts to the per-address limits).
    pub async fn new_from(
        ip: impl Into<std::net::Ipv4Addr>,
        port: u16,
        user: &str,
        password: &str,
    ) -> Peer {
        let sock = UdpSocket::bind((ip.into(), 0)).await.unwrap();
        Peer {
            sock,
            tcp: None,
            server: SocketAddr::from(([127, 0, 0, 1], port)),
            user: user.into(),
            key: stun::long_term_key(user, "videomeet", password),
            nonce: String::new(),
        }
    }

    /// A client whose requests go over one TCP connection (RFC 8656 §3.1: the allocation is
    /// that connection's).
    pub async fn new_tcp(port: u16, user: &str, password: &str) -> Peer {
        let mut peer = Peer::new(port, user, password).await;
        let stream = TcpStream::connect(peer.server).await.unwrap();
        peer.tcp = Some(Mutex::new(stream));
        peer
    }

    /// Whether the server closed the TCP connection within `within` (reads end).
    pub async fn tcp_closed_within(&self, within: Duration) -> bool {
        let mut tcp = self.tcp.as_ref().expect("a TCP peer").lock().await;
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(within, tcp.read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    /// One signed request with `nonce` as it is, no retry: the error code (0 for success).
    pub async fn ask_with_nonce(&self, method: u16, nonce: &str) -> u16 {
        let b = Builder::new(method, Class::Request, Self::txid())
            .attr(attr::USERNAME, self.user.as_bytes())
            .attr(attr::REALM, b"videomeet")
            .attr(attr::NONCE, nonce.as_bytes())
            .attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        let raw = self.roundtrip(b.finish(Some(&self.key), true)).await;
        code_of(&Message::parse(&raw).expect("a STUN answer"))
    }

    pub async fn recv(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(3), self.sock.recv(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        buf.truncate(n);
        buf
    }

    pub async fn roundtrip(&self, packet: Vec<u8>) -> Vec<u8> {
        if let Some(tcp) = &self.tcp {
            let mut tcp = tcp.lock().await;
            tcp.write_all(&packet).await.unwrap();
            let mut head = [0u8; 4];
            tokio::time::timeout(Duration::from_secs(3), tcp.read_exact(&mut head))
                .await
                .expect("an answer in time")
                .unwrap();
            let len = stun::stream_frame_len(&head).expect("a framed answer");
            let mut frame = vec![0u8; len];
            frame[..4].copy_from_slice(&head);
            tcp.read_exact(&mut frame[4..]).await.unwrap();
            return frame;
        }
        self.sock.send_to(&packet, self.server).await.unwrap();
        self.recv().await
    }

    pub fn txid() -> [u8; 12] {
        let mut t = [0u8; 12];
        getrandom::fill(&mut t).unwrap();
        t
    }

    /// Sends an authenticated request built by `build`; learns the nonce from a 401/438 first.
    /// Returns (error code or 0, the raw answer).
    pub async fn ask(&mut self, method: u16, build: impl Fn(Builder) -> Builder) -> (u16, Vec<u8>) {
        for _ in 0..2 {
            let b = Builder::new(method, Class::Request, Self::txid())
                .attr(attr::USERNAME, self.user.as_bytes())
                .attr(attr::REALM, b"videomeet")
                .attr(attr::NONCE, self.nonce.as_bytes());
            let raw = self.roundtrip(build(b).finish(Some(&self.key), true)).await;
            let msg = Message::parse(&raw).expect("a STUN answer");
            let code = code_of(&msg);
            if code == 401 || code == 438 {
                let nonce = msg.text(attr::NONCE).expect("a challenge names a nonce");
                if nonce != self.nonce {
                    self.nonce = nonce.into();
                    continue;
                }
            }
            return (code, raw);
        }
        unreachable!()
    }

    pub async fn allocate(&mut self) -> (u16, Option<SocketAddr>) {
        let (code, raw) = self
            .ask(stun::ALLOCATE, |b| {
                b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
            })
            .await;
        let msg = Message::parse(&raw).unwrap();
        if code == 0 {
            assert!(msg.integrity_ok(&self.key), "answers are signed");
            assert_eq!(msg.u32(attr::LIFETIME), Some(600));
        }
        (code, msg.xor_address(attr::XOR_RELAYED_ADDRESS))
    }

    pub async fn permit(&mut self, peer: SocketAddr) -> u16 {
        self.ask(stun::CREATE_PERMISSION, |b| {
            b.xor_address(attr::XOR_PEER_ADDRESS, peer)
        })
        .await
        .0
    }
}

pub fn code_of(msg: &Message) -> u16 {
    msg.get(attr::ERROR_CODE)
        .map_or(0, |v| u16::from(v[2]) * 100 + u16::from(v[3]))
}

/// The built-in TURN entry of a `joined`: (urls, username, password).
pub fn turn_entry(joined: &serde_json::Value) -> (Vec<String>, String, String) {
    let list = joined["ice_servers"].as_array().expect("ice_servers");
    let turn = list
        .iter()
        .find(|s| s["username"].is_string())
        .expect("a TURN entry");
    let urls = turn["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    (
        urls,
        turn["username"].as_str().unwrap().into(),
        turn["credential"].as_str().unwrap().into(),
    )
}
