//! The values rooms are made of: names, client ids, seat ids and tokens, what a join asks for,
//! what an update changes, a seat as the others see it, a chat line. Plain data; `serde` derives
//! only where a value goes out on the wire as it is.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::util::hex::{hex, unhex};

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Bytes a name may take (64 characters of up to 4 bytes).
pub const NAME_BYTES: usize = 256;
/// Bytes a `client` id may take.
pub const CLIENT_BYTES: usize = 64;
/// Longest chat message, in bytes.
pub const MAX_CHAT_BYTES: usize = 2048;
/// Longest room password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;

pub type Name = heapless::String<NAME_BYTES>;
pub type ClientId = heapless::String<CLIENT_BYTES>;

/// A seat's id, unique in the process while the seat lives. On the wire it is a string, so that
/// clients compare ids as strings and never meet integer-precision surprises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeatId(pub u64);

impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for SeatId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl SeatId {
    pub fn parse(text: &str) -> Option<SeatId> {
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(SeatId)
    }
}

/// A seat token: 128 bits from the OS CSPRNG, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Token(pub [u8; 16]);

impl Token {
    pub fn to_hex(self) -> heapless::String<32> {
        let mut out = heapless::String::new();
        let _ = out.push_str(&hex(&self.0));
        out
    }

    pub fn from_hex(text: &str) -> Option<Token> {
        Some(Token(unhex(text)?.try_into().ok()?))
    }

    /// Compares in time independent of where the tokens differ.
    pub fn matches(&self, other: &Token) -> bool {
        crate::core::password::secrets_equal(&self.0, &other.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

#[derive(Debug, Clone)]
pub struct Join {
    pub name: Name,
    pub client: ClientId,
    pub token: Option<Token>,
    pub password: Option<String>,
    pub audio: bool,
    pub video: bool,
    pub resume: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Update {
    pub audio: Option<bool>,
    pub video: Option<bool>,
    pub screen: Option<bool>,
    pub hand: Option<bool>,
    /// "I am recording the meeting" (refused while the host does not allow recording).
    pub recording: Option<bool>,
}

/// One seat as the others see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Peer {
    pub id: SeatId,
    pub name: Name,
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
    pub host: bool,
    pub away: bool,
    pub hand: bool,
    /// Recording the meeting in their browser: everyone is told before the first frame.
    pub recording: bool,
}

/// One chat message, as stored for late joiners and as sent.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChatLine {
    pub from: SeatId,
    pub name: Name,
    pub text: String,
    /// Milliseconds since the Unix epoch, by the server's clock.
    pub ts: u64,
}
