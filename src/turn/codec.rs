//! The STUN message format (RFC 8489) with the TURN methods and attributes (RFC 8656), and TURN's
//! ChannelData framing: parsing and building, nothing else. What to answer is decided by `auth`
//! and `allocations`; `server` sends it.
//!
//! Parsing never trusts a length: every attribute is bounds-checked against the message, and a
//! malformed message is `None` (the caller drops it, as RFC 8489 says for garbage on a UDP port).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::core::password::{hmac_sha1, hmac_sha1_verify};

pub const MAGIC: u32 = 0x2112_A442;
/// Channel numbers. RFC 8656 narrowed them to 0x4000-0x4FFF; RFC 5766's 0x4000-0x7FFF is still
/// accepted because clients of that era (coturn's own among them) pick from all of it, and on a
/// port that carries only STUN and ChannelData nothing else starts with 0x50-0x7F.
pub const CHANNELS: std::ops::RangeInclusive<u16> = 0x4000..=0x7FFF;
pub const HEADER: usize = 20;

/// Methods (RFC 8489 Binding; RFC 8656 the rest).
pub const BINDING: u16 = 0x001;
pub const ALLOCATE: u16 = 0x003;
pub const REFRESH: u16 = 0x004;
pub const SEND: u16 = 0x006;
pub const DATA: u16 = 0x007;
pub const CREATE_PERMISSION: u16 = 0x008;
pub const CHANNEL_BIND: u16 = 0x009;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// Attribute types this server reads or writes.
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    pub const EVEN_PORT: u16 = 0x0018;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const DONT_FRAGMENT: u16 = 0x001A;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const SOFTWARE: u16 = 0x8022;
    pub const FINGERPRINT: u16 = 0x8028;

    /// Comprehension-required attributes (type < 0x8000) this server understands; any other in
    /// a request is answered with 420 Unknown Attribute. EVEN-PORT is honoured by allocating an
    /// even port (a reservation of the next one is refused with 508, as is RESERVATION-TOKEN); DONT-FRAGMENT is accepted because UDP from this host is sent without it set
    /// anyway; PRIORITY and USE-CANDIDATE are ICE's and mean nothing to a server.
    pub const UNDERSTOOD: [u16; 20] = [
        MAPPED_ADDRESS,
        USERNAME,
        MESSAGE_INTEGRITY,
        ERROR_CODE,
        UNKNOWN_ATTRIBUTES,
        CHANNEL_NUMBER,
        LIFETIME,
        XOR_PEER_ADDRESS,
        DATA,
        REALM,
        NONCE,
        XOR_RELAYED_ADDRESS,
        REQUESTED_ADDRESS_FAMILY,
        EVEN_PORT,
        REQUESTED_TRANSPORT,
        DONT_FRAGMENT,
        XOR_MAPPED_ADDRESS,
        RESERVATION_TOKEN,
        PRIORITY,
        USE_CANDIDATE,
    ];
}

/// A parsed message, borrowing the packet.
#[derive(Debug)]
pub struct Message<'a> {
    pub method: u16,
    pub class: Class,
    pub txid: [u8; 12],
    /// The whole message as received.
    pub raw: &'a [u8],
    /// (type, value, offset of the attribute header in `raw`) in order.
    attrs: Vec<(u16, &'a [u8], usize)>,
}

/// Whether the first byte says STUN (00) rather than ChannelData (01) - RFC 7983's demux.
pub fn looks_like_stun(packet: &[u8]) -> bool {
    packet.len() >= HEADER && packet[0] < 0x04 && packet[4..8] == MAGIC.to_be_bytes()
}

/// The length of the STUN message or ChannelData frame starting `head` (at least 4 bytes), as
/// framed on a TCP stream: ChannelData is padded to 4 there (RFC 8656 §12.5).
pub fn stream_frame_len(head: &[u8]) -> Option<usize> {
    let body = usize::from(u16::from_be_bytes([*head.get(2)?, *head.get(3)?]));
    // The top two bits: 00 STUN, 01 ChannelData (any channel of CHANNELS).
    match head.first()? >> 6 {
        0 => Some(HEADER + body),
        1 => Some(4 + body.div_ceil(4) * 4),
        _ => None,
    }
}

impl<'a> Message<'a> {
    pub fn parse(raw: &'a [u8]) -> Option<Message<'a>> {
        if !looks_like_stun(raw) {
            return None;
        }
        let kind = u16::from_be_bytes([raw[0], raw[1]]);
        let len = usize::from(u16::from_be_bytes([raw[2], raw[3]]));
        if len % 4 != 0 || HEADER + len != raw.len() {
            return None;
        }
        let method = (kind & 0x000F) | ((kind & 0x00E0) >> 1) | ((kind & 0x3E00) >> 2);
        let class = match ((kind >> 7) & 0b10) | ((kind >> 4) & 0b01) {
            0 => Class::Request,
            1 => Class::Indication,
            2 => Class::Success,
            _ => Class::Error,
        };
        let mut txid = [0u8; 12];
        txid.copy_from_slice(&raw[8..20]);
        let mut attrs = Vec::with_capacity(8);
        let mut at = HEADER;
        while at < raw.len() {
            let head = raw.get(at..at + 4)?;
            let kind = u16::from_be_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let value = raw.get(at + 4..at + 4 + len)?;
            attrs.push((kind, value, at));
            at += 4 + len.div_ceil(4) * 4;
            if attrs.len() > 64 {
                return None;
            }
        }
        if at != raw.len() {
            return None;
        }
        Some(Message {
            method,
            class,
            txid,
            raw,
            attrs,
        })
    }

    /// The first attribute of this type, before MESSAGE-INTEGRITY (later ones are not covered
    /// by it and are ignored, except FINGERPRINT).
    pub fn get(&self, kind: u16) -> Option<&'a [u8]> {
        let mut seen_integrity = false;
        for (k, value, _) in &self.attrs {
            if *k == kind && (!seen_integrity || kind == attr::FINGERPRINT) {
                return Some(value);
            }
            seen_integrity |= *k == attr::MESSAGE_INTEGRITY;
        }
        None
    }

    /// Comprehension-required attribute types this server does not know.
    pub fn unknown_required(&self) -> Vec<u16> {
        let mut unknown: Vec<u16> = self
            .attrs
            .iter()
            .map(|(k, _, _)| *k)
            .filter(|k| *k < 0x8000 && !attr::UNDERSTOOD.contains(k))
            .collect();
        unknown.dedup();
        unknown
    }

    pub fn text(&self, kind: u16) -> Option<&'a str> {
        std::str::from_utf8(self.get(kind)?).ok()
    }

    pub fn u32(&self, kind: u16) -> Option<u32> {
        let v = self.get(kind)?;
        Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
    }

    pub fn xor_address(&self, kind: u16) -> Option<SocketAddr> {
        decode_xor_address(self.get(kind)?, &self.txid)
    }

    /// Every XOR-PEER-ADDRESS (CreatePermission may carry several) that MESSAGE-INTEGRITY
    /// covers: like [`Message::get`], what follows it is ignored (RFC 8489 §14.5), so nobody on
    /// the path can append a peer to a signed request.
    pub fn xor_addresses(&self, kind: u16) -> Vec<SocketAddr> {
        self.attrs
            .iter()
            .take_while(|(k, _, _)| *k != attr::MESSAGE_INTEGRITY)
            .filter(|(k, _, _)| *k == kind)
            .filter_map(|(_, v, _)| decode_xor_address(v, &self.txid))
            .collect()
    }

    /// True if MESSAGE-INTEGRITY is present and is the HMAC-SHA1 of the message under `key`.
    pub fn integrity_ok(&self, key: &[u8]) -> bool {
        let Some((_, value, offset)) = self
            .attrs
            .iter()
            .find(|(k, _, _)| *k == attr::MESSAGE_INTEGRITY)
        else {
            return false;
        };
        if value.len() != 20 {
            return false;
        }
        // The length field is set as if MESSAGE-INTEGRITY were the last attribute.
        let mut covered = self.raw[..*offset].to_vec();
        let len = (*offset + 24 - HEADER) as u16;
        covered[2..4].copy_from_slice(&len.to_be_bytes());
        hmac_sha1_verify(key, &covered, value)
    }

    /// Whether the message carries `kind` where [`Message::get`] would read it.
    pub fn has(&self, kind: u16) -> bool {
        self.get(kind).is_some()
    }
}

fn decode_xor_address(value: &[u8], txid: &[u8; 12]) -> Option<SocketAddr> {
    let family = *value.get(1)?;
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ (MAGIC >> 16) as u16;
    let magic = MAGIC.to_be_bytes();
    match (family, value.len()) {
        (0x01, 8) => {
            let mut ip = [0u8; 4];
            for i in 0..4 {
                ip[i] = value[4 + i] ^ magic[i];
            }
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        (0x02, 20) => {
            let mut ip = [0u8; 16];
            for i in 0..16 {
                let mask = if i < 4 { magic[i] } else { txid[i - 4] };
                ip[i] = value[4 + i] ^ mask;
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => None,
    }
}

fn encode_xor_address(addr: SocketAddr, txid: &[u8; 12]) -> Vec<u8> {
    let magic = MAGIC.to_be_bytes();
    let port = addr.port() ^ (MAGIC >> 16) as u16;
    let mut out = vec![0u8];
    match addr.ip().to_canonical() {
        IpAddr::V4(ip) => {
            out.push(0x01);
            out.extend_from_slice(&port.to_be_bytes());
            for (i, b) in ip.octets().iter().enumerate() {
                out.push(b ^ magic[i]);
            }
        }
        IpAddr::V6(ip) => {
            out.push(0x02);
            out.extend_from_slice(&port.to_be_bytes());
            for (i, b) in ip.octets().iter().enumerate() {
                out.push(b ^ if i < 4 { magic[i] } else { txid[i - 4] });
            }
        }
    }
    out
}

/// Builds one message: `Builder::new(..)`, attributes, then `finish`.
pub struct Builder {
    buf: Vec<u8>,
    txid: [u8; 12],
}

impl Builder {
    pub fn new(method: u16, class: Class, txid: [u8; 12]) -> Builder {
        let c = match class {
            Class::Request => 0,
            Class::Indication => 0x0010,
            Class::Success => 0x0100,
            Class::Error => 0x0110,
        };
        let kind = (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | c;
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&kind.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC.to_be_bytes());
        buf.extend_from_slice(&txid);
        Builder { buf, txid }
    }

    pub fn attr(mut self, kind: u16, value: &[u8]) -> Builder {
        self.buf.extend_from_slice(&kind.to_be_bytes());
        self.buf
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        let pad = value.len().div_ceil(4) * 4 - value.len();
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
        self
    }

    pub fn xor_address(self, kind: u16, addr: SocketAddr) -> Builder {
        let value = encode_xor_address(addr, &self.txid);
        self.attr(kind, &value)
    }

    pub fn u32(self, kind: u16, value: u32) -> Builder {
        self.attr(kind, &value.to_be_bytes())
    }

    /// ERROR-CODE with its reason phrase.
    pub fn error(self, code: u16, reason: &str) -> Builder {
        let mut value = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
        value.extend_from_slice(reason.as_bytes());
        self.attr(attr::ERROR_CODE, &value)
    }

    fn set_len(&mut self, extra: usize) {
        let len = (self.buf.len() + extra - HEADER) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// MESSAGE-INTEGRITY under `key` (when given), then FINGERPRINT (when asked).
    pub fn finish(mut self, key: Option<&[u8]>, fingerprint: bool) -> Vec<u8> {
        if let Some(key) = key {
            self.set_len(24);
            let mac = hmac_sha1(key, &self.buf);
            self = self.attr(attr::MESSAGE_INTEGRITY, &mac);
        }
        if fingerprint {
            self.set_len(8);
            let crc = crc32(&self.buf) ^ 0x5354_554E;
            self = self.u32(attr::FINGERPRINT, crc);
        }
        self.set_len(0);
        self.buf
    }
}

/// A ChannelData frame (RFC 8656 §12.4), padded to 4 bytes when it goes on a stream.
pub fn channel_data(channel: u16, data: &[u8], padded: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + data.len() + 3);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    if padded {
        out.resize(4 + data.len().div_ceil(4) * 4, 0);
    }
    out
}

/// A ChannelData frame's (channel, data), if it is one.
pub fn parse_channel_data(packet: &[u8]) -> Option<(u16, &[u8])> {
    let channel = u16::from_be_bytes([*packet.first()?, *packet.get(1)?]);
    let len = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    if !CHANNELS.contains(&channel) {
        return None;
    }
    Some((channel, packet.get(4..4 + len)?))
}

/// The long-term credential key: MD5(username ":" realm ":" password) (RFC 8489 §9.2.2).
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    use md5::Digest;
    let mut md5 = md5::Md5::new();
    md5.update(format!("{username}:{realm}:{password}").as_bytes());
    md5.finalize().into()
}

/// CRC-32 (ISO-HDLC, as in zlib), a byte at a time from a 256-entry table built at compile time.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for b in data {
        crc = TABLE[((crc ^ u32::from(*b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 5769 §2.1: a request with USERNAME, MESSAGE-INTEGRITY (short-term key "VOkJxbRl1RmTxUk/WvJxBt")
    /// and FINGERPRINT.
    const RFC5769_REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e20746573
        7420636c 69656e74 002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020
        000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf";

    #[test]
    fn rfc5769_request_integrity_and_fingerprint_check_out() {
        let raw = hex(RFC5769_REQUEST);
        let msg = Message::parse(&raw).expect("parses");
        assert_eq!((msg.method, msg.class), (BINDING, Class::Request));
        assert_eq!(msg.text(attr::USERNAME), Some("evtj:h6vY"));
        assert!(msg.integrity_ok(b"VOkJxbRl1RmTxUk/WvJxBt"));
        assert!(!msg.integrity_ok(b"wrong"));
        let fp = msg.u32(attr::FINGERPRINT).unwrap();
        assert_eq!(crc32(&raw[..raw.len() - 8]) ^ 0x5354_554E, fp);
    }

    /// RFC 5769 §2.2: the IPv4 response's XOR-MAPPED-ADDRESS is 192.0.2.1:32853.
    #[test]
    fn rfc5769_ipv4_response_address() {
        let raw = hex(
            "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220
             002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7
             80280004c07d4c96",
        );
        let msg = Message::parse(&raw).unwrap();
        assert_eq!(msg.class, Class::Success);
        assert_eq!(
            msg.xor_address(attr::XOR_MAPPED_ADDRESS),
            Some("192.0.2.1:32853".parse().unwrap())
        );
        assert!(msg.integrity_ok(b"VOkJxbRl1RmTxUk/WvJxBt"));
    }

    /// The long-term key is MD5("user:realm:pass"), checked against Python's hashlib.
    #[test]
    fn long_term_key_is_md5_of_user_realm_password() {
        // python3 -c "import hashlib;print(hashlib.md5(b'user:realm:pass').hexdigest())"
        assert_eq!(
            long_term_key("user", "realm", "pass").to_vec(),
            hex("8493fbc53ba582fb4c044c456bdc40eb")
        );
    }

    #[test]
    fn built_messages_parse_back_with_their_integrity() {
        let txid = [7u8; 12];
        let peer: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        let raw = Builder::new(ALLOCATE, Class::Success, txid)
            .xor_address(
                attr::XOR_RELAYED_ADDRESS,
                "203.0.113.9:50000".parse().unwrap(),
            )
            .xor_address(attr::XOR_PEER_ADDRESS, peer)
            .u32(attr::LIFETIME, 600)
            .attr(attr::REALM, b"videomeet")
            .finish(Some(b"key"), true);
        let msg = Message::parse(&raw).unwrap();
        assert_eq!(
            (msg.method, msg.class, msg.txid),
            (ALLOCATE, Class::Success, txid)
        );
        assert_eq!(
            msg.xor_address(attr::XOR_RELAYED_ADDRESS),
            Some("203.0.113.9:50000".parse().unwrap())
        );
        assert_eq!(msg.xor_address(attr::XOR_PEER_ADDRESS), Some(peer));
        assert_eq!(msg.u32(attr::LIFETIME), Some(600));
        assert_eq!(msg.text(attr::REALM), Some("videomeet"));
        assert!(msg.integrity_ok(b"key"));
        assert!(msg.unknown_required().is_empty());
        let error = Builder::new(BINDING, Class::Error, txid)
            .error(420, "Unknown Attribute")
            .finish(None, false);
        let msg = Message::parse(&error).unwrap();
        assert_eq!(msg.get(attr::ERROR_CODE).unwrap()[2..4], [4, 20]);
    }

    #[test]
    fn attributes_after_message_integrity_are_ignored() {
        let txid = [9u8; 12];
        let signed: SocketAddr = "203.0.113.1:4000".parse().unwrap();
        let appended: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        let mut raw = Builder::new(CREATE_PERMISSION, Class::Request, txid)
            .xor_address(attr::XOR_PEER_ADDRESS, signed)
            .finish(Some(b"key"), false);
        // Someone on the path appends a peer and a reservation token after the MAC.
        let extra = Builder::new(CREATE_PERMISSION, Class::Request, txid)
            .xor_address(attr::XOR_PEER_ADDRESS, appended)
            .attr(attr::RESERVATION_TOKEN, &[1; 8])
            .finish(None, false);
        raw.extend_from_slice(&extra[HEADER..]);
        let len = (raw.len() - HEADER) as u16;
        raw[2..4].copy_from_slice(&len.to_be_bytes());
        let msg = Message::parse(&raw).unwrap();
        assert!(msg.integrity_ok(b"key"), "the signed part still checks out");
        assert_eq!(msg.xor_addresses(attr::XOR_PEER_ADDRESS), vec![signed]);
        assert!(!msg.has(attr::RESERVATION_TOKEN));
        assert!(msg.has(attr::MESSAGE_INTEGRITY));
    }

    #[test]
    fn garbage_and_truncation_are_refused() {
        let raw = hex(RFC5769_REQUEST);
        for cut in 0..raw.len() {
            assert!(Message::parse(&raw[..cut]).is_none(), "cut at {cut}");
        }
        let mut lying = raw.clone();
        lying[HEADER + 3] = 0xFF; // SOFTWARE claims 255 bytes
        assert!(Message::parse(&lying).is_none());
        assert!(Message::parse(&[0u8; 20]).is_none(), "no magic cookie");
        let unknown = Builder::new(BINDING, Class::Request, [1; 12])
            .attr(0x7777, b"x")
            .finish(None, false);
        assert_eq!(
            Message::parse(&unknown).unwrap().unknown_required(),
            [0x7777]
        );
    }

    #[test]
    fn channel_data_frames() {
        let frame = channel_data(0x4001, b"hello", true);
        assert_eq!(frame.len(), 12);
        assert_eq!(stream_frame_len(&frame), Some(12));
        assert_eq!(parse_channel_data(&frame), Some((0x4001, &b"hello"[..])));
        assert_eq!(parse_channel_data(&channel_data(0x3FFF, b"x", false)), None);
        assert_eq!(parse_channel_data(&channel_data(0x8000, b"x", false)), None);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
