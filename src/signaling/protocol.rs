//! The wire contract of `/ws/{room}`: every message, field, error code and close code.
//! `docs/PROTOCOL.md` mirrors this file; change both together.
//!
//! Client messages are decoded in one borrowed pass into [`Wire`] (every field optional) and then
//! checked into a [`ClientMsg`]: serde's internally tagged enums buffer their content, which would
//! copy every relayed SDP and breaks `RawValue`, so `signal.data` stays a borrowed slice of the
//! frame and is never parsed.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

// The values the core is made of, on the wire as they are.
pub use crate::core::ids::{
    ChatLine, ClientId, Join, Name, Peer, SeatId, Token, Update, CLIENT_BYTES, MAX_CHAT_BYTES,
    MAX_NAME_CHARS, MAX_PASSWORD_CHARS, NAME_BYTES,
};
pub use crate::core::rooms::KnockInfo;

/// Every field any client message may carry, all optional, borrowed from the frame.
#[derive(Deserialize, Default)]
struct Wire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    client: Option<Cow<'a, str>>,
    #[serde(borrow)]
    token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    password: Option<Cow<'a, str>>,
    audio: Option<bool>,
    video: Option<bool>,
    screen: Option<bool>,
    resume: Option<bool>,
    #[serde(borrow)]
    to: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    hand: Option<bool>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    locked: Option<bool>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    on: Option<bool>,
    recording: Option<bool>,
    allowed: Option<bool>,
}

/// A checked client message.
#[derive(Debug)]
pub enum ClientMsg<'a> {
    Join(Box<Join>),
    Signal {
        to: SeatId,
        data: &'a RawValue,
    },
    Update(Update),
    Leave,
    Chat {
        text: Cow<'a, str>,
    },
    /// Host only: set (non-empty) or clear (empty) the room password.
    SetPassword {
        password: String,
    },
    /// Host only: lock or unlock the room to new people.
    Lock {
        locked: bool,
    },
    /// Host only: remove a participant for the life of the room.
    Remove {
        id: SeatId,
    },
    /// Host only: turn "Ask to join" on or off.
    AskToJoin {
        on: bool,
    },
    /// Host only: let a knock in.
    Admit {
        id: SeatId,
    },
    /// Host only: turn a knock away.
    Deny {
        id: SeatId,
    },
    /// Opaque data for everyone in the room (reactions and other client-only features); its
    /// size is checked by the handler against `caps.room_message_bytes`.
    RoomMessage {
        data: &'a RawValue,
    },
    /// Host only: whether anyone may record the meeting (off also stops every recording).
    AllowRecording {
        allowed: bool,
    },
}

/// Why a client message was refused; its text goes to the client in a `bad_request` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(message: impl Into<String>) -> BadRequest {
    BadRequest(message.into())
}

impl<'a> ClientMsg<'a> {
    /// Decodes and checks one text frame.
    pub fn parse(text: &'a str) -> Result<ClientMsg<'a>, BadRequest> {
        let wire: Wire<'a> = serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "expected one JSON object with a `type`: {}",
                first_line(&e)
            ))
        })?;
        let kind = wire.kind.as_deref().ok_or_else(|| bad("missing `type`"))?;
        match kind {
            "join" => Ok(ClientMsg::Join(Box::new(Join {
                name: parse_name(
                    wire.name
                        .as_deref()
                        .ok_or_else(|| bad("`join` needs a `name`"))?,
                )?,
                client: parse_client(
                    wire.client
                        .as_deref()
                        .ok_or_else(|| bad("`join` needs a `client`"))?,
                )?,
                token: match wire.token.as_deref() {
                    None | Some("") => None,
                    // A malformed token is just a wrong token: it never takes a seat.
                    Some(text) => Some(Token::from_hex(text).unwrap_or(Token([0; 16]))),
                },
                password: wire.password.map(Cow::into_owned),
                audio: wire.audio.unwrap_or(false),
                video: wire.video.unwrap_or(false),
                resume: wire.resume.unwrap_or(false),
            }))),
            "signal" => {
                let to = wire
                    .to
                    .as_deref()
                    .ok_or_else(|| bad("`signal` needs `to`"))?;
                let to = SeatId::parse(to).ok_or_else(|| bad("`to` is not a peer id"))?;
                let data = wire.data.ok_or_else(|| bad("`signal` needs `data`"))?;
                Ok(ClientMsg::Signal { to, data })
            }
            "update" => Ok(ClientMsg::Update(Update {
                audio: wire.audio,
                video: wire.video,
                screen: wire.screen,
                hand: wire.hand,
                recording: wire.recording,
            })),
            "leave" => Ok(ClientMsg::Leave),
            "chat" => {
                let text = wire.text.ok_or_else(|| bad("`chat` needs `text`"))?;
                check_chat(&text)?;
                Ok(ClientMsg::Chat { text })
            }
            "set-password" => {
                let password = wire
                    .password
                    .ok_or_else(|| bad("`set-password` needs `password` (empty clears it)"))?;
                if password.chars().count() > MAX_PASSWORD_CHARS {
                    return Err(bad(format!(
                        "the password is longer than {MAX_PASSWORD_CHARS} characters"
                    )));
                }
                Ok(ClientMsg::SetPassword {
                    password: password.into_owned(),
                })
            }
            "lock" => Ok(ClientMsg::Lock {
                locked: wire.locked.ok_or_else(|| bad("`lock` needs `locked`"))?,
            }),
            "allow-recording" => Ok(ClientMsg::AllowRecording {
                allowed: wire
                    .allowed
                    .ok_or_else(|| bad("`allow-recording` needs `allowed`"))?,
            }),
            "remove" => {
                let id = wire
                    .id
                    .as_deref()
                    .ok_or_else(|| bad("`remove` needs `id`"))?;
                Ok(ClientMsg::Remove {
                    id: SeatId::parse(id).ok_or_else(|| bad("`id` is not a peer id"))?,
                })
            }
            "ask-to-join" => Ok(ClientMsg::AskToJoin {
                on: wire.on.ok_or_else(|| bad("`ask-to-join` needs `on`"))?,
            }),
            "admit" | "deny" => {
                let id = wire
                    .id
                    .as_deref()
                    .ok_or_else(|| bad(format!("`{kind}` needs `id`")))?;
                let id = SeatId::parse(id).ok_or_else(|| bad("`id` is not a knock id"))?;
                Ok(if kind == "admit" {
                    ClientMsg::Admit { id }
                } else {
                    ClientMsg::Deny { id }
                })
            }
            "room-message" => Ok(ClientMsg::RoomMessage {
                data: wire
                    .data
                    .ok_or_else(|| bad("`room-message` needs `data`"))?,
            }),
            other => Err(bad(format!(
                "unknown message type `{}`",
                other.chars().take(32).collect::<String>()
            ))),
        }
    }
}

/// Checks a chat message: 1 to 2,048 bytes, not blank, nothing unsafe (see [`is_unsafe_in_text`]).
/// The format characters real text is written with (the right-to-left and left-to-right marks
/// RTL keyboards insert, zero-width joiners of emoji and Indic scripts, isolates, soft hyphens,
/// variation selectors and emoji tags) are text, not a threat: the client shows each message
/// as its own isolated paragraph.
fn check_chat(text: &str) -> Result<(), BadRequest> {
    if text.trim().is_empty() {
        return Err(bad("the chat message is empty"));
    }
    if text.len() > MAX_CHAT_BYTES {
        return Err(bad(format!(
            "the chat message is longer than {MAX_CHAT_BYTES} bytes"
        )));
    }
    if text.chars().any(is_unsafe_in_text) {
        return Err(bad(
            "the chat message has control characters or bidi overrides",
        ));
    }
    Ok(())
}

/// What a chat message may not hold: control characters but newline and tab; the bidi
/// embeddings and overrides (U+202A-U+202E), which reorder the text after them and are how
/// "Trojan Source" text hides what it says; and the interlinear annotation marks
/// (U+FFF9-U+FFFB), which hide text. `assets/js/chat-rules.js` (`UNSAFE`) mirrors this.
pub fn is_unsafe_in_text(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{FFF9}'..='\u{FFFB}')
}

fn first_line(e: &serde_json::Error) -> String {
    e.to_string().lines().next().unwrap_or("").to_string()
}

/// Bidi overrides, embeddings, isolates and marks: they let a name or a message reorder the text
/// around it.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A display name: trimmed, 1–64 characters, no control or bidi-control characters.
pub fn parse_name(raw: &str) -> Result<Name, BadRequest> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err(bad("the name is empty"));
    }
    if chars > MAX_NAME_CHARS {
        return Err(bad(format!(
            "the name is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(bad("the name has control characters"));
    }
    Name::try_from(name).map_err(|_| bad("the name is too long"))
}

/// A client id: 8–64 characters of `A-Za-z0-9_-`.
pub fn parse_client(raw: &str) -> Result<ClientId, BadRequest> {
    let ok = (8..=CLIENT_BYTES).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(bad("`client` must be 8-64 characters of A-Z a-z 0-9 _ -"));
    }
    ClientId::try_from(raw).map_err(|_| bad("`client` is too long"))
}

/// Every message the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMsg<'a> {
    Joined {
        you: SeatId,
        token: heapless::String<32>,
        host: bool,
        room: &'a str,
        peers: Vec<Peer>,
        ice_servers: &'a RawValue,
        locked: bool,
        password: bool,
        /// "Ask to join" is on.
        ask: bool,
        /// Whether the host allows recording in this room.
        recording_allowed: bool,
        chat: Vec<ChatLine>,
        /// True when this join took over an existing seat (same id, the others kept theirs).
        resumed: bool,
        /// For the host: who is waiting to be let in (empty for everyone else).
        knocks: Vec<KnockInfo>,
    },
    RoomUpdated {
        locked: bool,
        password: bool,
        recording_allowed: bool,
        ask: bool,
    },
    /// To a knocker: you wait for the host. `token` takes the knock (and, once admitted, the
    /// seat) back after a reconnect.
    Knocking {
        id: SeatId,
        token: heapless::String<32>,
    },
    /// To a knocker: the host let you in; send `join` again (with the token) to take the seat.
    Admitted,
    /// To the host: someone is waiting.
    Knock(KnockInfo),
    /// To the host: a knock was admitted, denied or withdrawn.
    KnockGone {
        id: SeatId,
    },
    RoomMessage {
        from: SeatId,
        data: &'a RawValue,
    },
    Chat(ChatLine),
    PeerJoined {
        peer: Peer,
    },
    PeerLeft {
        id: SeatId,
    },
    PeerUpdated {
        peer: Peer,
    },
    PeerRejoined {
        peer: Peer,
        reset: bool,
    },
    Signal {
        from: SeatId,
        data: &'a RawValue,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
    },
}

impl ServerMsg<'_> {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// The error codes of `error` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    RoomFull,
    BadPassword,
    TooLarge,
    ServerBusy,
    Replaced,
    Locked,
    Removed,
    NotHost,
    RateLimited,
    SlowDown,
    TooManyRooms,
    Denied,
    NoFreeSeat,
    RecordingOff,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::BadPassword => "bad_password",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::ServerBusy => "server_busy",
            ErrorCode::Replaced => "replaced",
            ErrorCode::Locked => "locked",
            ErrorCode::Removed => "removed",
            ErrorCode::NotHost => "not_host",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::Denied => "denied",
            ErrorCode::NoFreeSeat => "no_free_seat",
            ErrorCode::RecordingOff => "recording_off",
        }
    }

    /// The close code that follows this error, if the socket is closed for it.
    pub fn close_code(self) -> Option<u16> {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::NotHost
            | ErrorCode::SlowDown
            | ErrorCode::RecordingOff
            | ErrorCode::NoFreeSeat => None,
            ErrorCode::Denied => Some(close::DENIED),
            ErrorCode::RateLimited => Some(close::RATE_LIMITED),
            ErrorCode::Locked => Some(close::LOCKED),
            ErrorCode::Removed => Some(close::REMOVED),
            ErrorCode::Replaced => Some(close::REPLACED),
            ErrorCode::RoomFull => Some(close::ROOM_FULL),
            ErrorCode::BadPassword => Some(close::BAD_PASSWORD),
            ErrorCode::ServerBusy => Some(close::SERVER_BUSY),
            ErrorCode::TooLarge => Some(close::TOO_LARGE),
            ErrorCode::TooManyRooms => Some(close::TOO_MANY_ROOMS),
        }
    }

    /// A sentence for people, in English; the client shows its own translation by code.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "The message was not understood.",
            ErrorCode::RoomFull => "This room is full.",
            ErrorCode::BadPassword => "This room needs the right password.",
            ErrorCode::TooLarge => "The message was larger than 1 MiB.",
            ErrorCode::ServerBusy => "The server is too busy right now; try again soon.",
            ErrorCode::Replaced => "You joined this room from another tab or device.",
            ErrorCode::Locked => "The host has locked this room.",
            ErrorCode::Removed => "The host removed you from this meeting.",
            ErrorCode::NotHost => "Only the host can do that.",
            ErrorCode::RateLimited => {
                "Too many attempts from your network; wait a minute and try again."
            }
            ErrorCode::SlowDown => "Messages are coming too fast; some were dropped.",
            ErrorCode::TooManyRooms => {
                "Too many rooms were made from your address; use one of them or try later."
            }
            ErrorCode::Denied => "The host did not let you in; you may ask again in a while.",
            ErrorCode::NoFreeSeat => "Every seat is taken; the knock waits until one is free.",
            ErrorCode::RecordingOff => "The host has turned recording off for this room.",
        }
    }
}

/// WebSocket close codes the server sends.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_LARGE: u16 = 1009;
    pub const REPLACED: u16 = 4000;
    pub const ROOM_FULL: u16 = 4001;
    pub const BAD_PASSWORD: u16 = 4002;
    pub const SERVER_BUSY: u16 = 4003;
    pub const REMOVED: u16 = 4004;
    pub const LOCKED: u16 = 4005;
    pub const RATE_LIMITED: u16 = 4006;
    pub const TOO_MANY_ROOMS: u16 = 4007;
    pub const DENIED: u16 = 4008;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_decodes_with_optional_fields() {
        let msg = ClientMsg::parse(
            r#"{"type":"join","name":"  Ada ","client":"abcdefgh","audio":true,"video":false}"#,
        )
        .unwrap();
        let ClientMsg::Join(join) = msg else {
            panic!("not a join")
        };
        assert_eq!(join.name.as_str(), "Ada");
        assert!(join.audio && !join.video && !join.resume);
        assert!(join.token.is_none());
    }

    #[test]
    fn signal_data_is_kept_verbatim() {
        let text = r#"{"type":"signal","to":"12","data":{"sdp":"v=0\r\n","n":[1,2]}}"#;
        let ClientMsg::Signal { to, data } = ClientMsg::parse(text).unwrap() else {
            panic!("not a signal")
        };
        assert_eq!(to, SeatId(12));
        assert_eq!(data.get(), r#"{"sdp":"v=0\r\n","n":[1,2]}"#);
        let out = ServerMsg::Signal {
            from: SeatId(3),
            data,
        }
        .to_json();
        assert_eq!(
            out,
            r#"{"type":"signal","from":"3","data":{"sdp":"v=0\r\n","n":[1,2]}}"#
        );
    }

    #[test]
    fn recording_travels_in_update_and_the_host_allows_it_or_not() {
        let Ok(ClientMsg::Update(update)) =
            ClientMsg::parse(r#"{"type":"update","recording":true}"#)
        else {
            panic!("not an update")
        };
        assert_eq!(update.recording, Some(true));
        assert_eq!(update.audio, None);
        assert!(matches!(
            ClientMsg::parse(r#"{"type":"allow-recording","allowed":false}"#),
            Ok(ClientMsg::AllowRecording { allowed: false })
        ));
        let refused = ServerMsg::Error {
            code: ErrorCode::RecordingOff,
            message: ErrorCode::RecordingOff.message(),
        }
        .to_json();
        assert!(refused.contains(r#""code":"recording_off""#), "{refused}");
        assert_eq!(
            ErrorCode::RecordingOff.close_code(),
            None,
            "the socket stays"
        );
    }

    #[test]
    fn bad_input_is_a_clear_error_not_a_panic() {
        for text in [
            "",
            "null",
            "[]",
            "{}",
            r#"{"type":5}"#,
            r#"{"type":"dance"}"#,
            r#"{"type":"signal","to":"x","data":1}"#,
            r#"{"type":"signal","to":"1"}"#,
            r#"{"type":"join","name":"","client":"abcdefgh"}"#,
            r#"{"type":"join","name":"a\u202Eb","client":"abcdefgh"}"#,
            r#"{"type":"join","name":"a","client":"short"}"#,
            r#"{"type":"join","name":"a","client":"abcdefgh","audio":"yes"}"#,
        ] {
            assert!(ClientMsg::parse(text).is_err(), "{text} should be refused");
        }
        for text in [
            r#"{"type":"chat","text":"   "}"#,
            r#"{"type":"chat"}"#,
            r#"{"type":"chat","text":"a\u0000b"}"#,
            r#"{"type":"lock"}"#,
            r#"{"type":"allow-recording"}"#,
            r#"{"type":"allow-recording","allowed":"no"}"#,
            r#"{"type":"remove","id":"me"}"#,
        ] {
            assert!(ClientMsg::parse(text).is_err(), "{text} should be refused");
        }
        let long_chat = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(2049));
        assert!(ClientMsg::parse(&long_chat).is_err());
        let ok_chat = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(2048));
        assert!(ClientMsg::parse(&ok_chat).is_ok());
        let long = "x".repeat(65);
        assert!(parse_name(&long).is_err());
        assert!(parse_name(&"é".repeat(64)).is_ok());
    }

    /// Issue 16: RTL keyboards insert U+200F; emoji and Indic scripts need joiners. Only
    /// controls, overrides and annotation marks are refused.
    #[test]
    fn chat_takes_the_format_characters_real_text_has_and_refuses_unsafe_ones() {
        for text in [
            "\u{5E9}\u{5DC}\u{5D5}\u{5DD}\u{200F}!",
            "\u{200E}abc",
            "\u{627}\u{61C}1",
            "\u{1F469}\u{200D}\u{1F4BB}",
            "\u{915}\u{94D}\u{200C}\u{937}",
            "\u{2067}\u{5E9}\u{2069} ok",
            "soft\u{AD}hyphen",
            "\u{2764}\u{FE0F}",
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "line\nand\ttab",
        ] {
            let json = serde_json::json!({"type": "chat", "text": text}).to_string();
            assert!(ClientMsg::parse(&json).is_ok(), "{text:?} should be taken");
        }
        for text in [
            "a\u{202E}evil",
            "\u{202D}x",
            "\u{202A}x",
            "a\u{0007}b",
            "a\u{009B}b",
            "\u{FFF9}hidden\u{FFFB}",
        ] {
            let json = serde_json::json!({"type": "chat", "text": text}).to_string();
            assert!(
                ClientMsg::parse(&json).is_err(),
                "{text:?} should be refused"
            );
        }
    }

    #[test]
    fn tokens_round_trip_and_compare() {
        let token = Token([7; 16]);
        let hex = token.to_hex();
        assert_eq!(hex.len(), 32);
        assert!(Token::from_hex(&hex).unwrap().matches(&token));
        assert!(Token::from_hex("zz").is_none());
        assert!(!Token([8; 16]).matches(&token));
    }
}
