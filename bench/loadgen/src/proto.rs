//! The wire framing, the one thing that differs between the VideoMeet server and the Node +
//! Socket.io reference relay used for the side-by-side figures. Everything above this module
//! (joins, signals, the workload, the statistics) is identical in both modes, so any difference
//! in the numbers comes from the servers, not from two load generators.
//!
//! VideoMeet: `ws://HOST:PORT/ws/ROOM`, each text frame is one protocol object.
//!
//! Socket.io (the reference's fixed contract, Engine.IO v4 over a WebSocket only):
//! `ws://HOST:PORT/socket.io/?EIO=4&transport=websocket&room=ROOM`; the server opens with
//! `0{...}`, the client connects the default namespace with `40`, the server confirms with
//! `40{"sid":...}`; from then on every message either way is `42["msg",OBJ]` with OBJ the
//! VideoMeet protocol object, and the server's ping `2` must be answered `3`.

use std::net::SocketAddr;

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    VideoMeet,
    SocketIo,
}

/// What one received text frame means, beyond the protocol objects.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A protocol object (`joined`, `signal`, `error`, ...).
    Msg(Value),
    /// Engine.IO ping: answer with [`Proto::PONG`] or the server drops us.
    Ping,
    /// Engine.IO open (`0{...}`).
    Open,
    /// Socket.io namespace connect confirmed (`40{...}`).
    Connected,
    /// Engine.IO close (`1`) or Socket.io disconnect (`41`): the session is over.
    Disconnect,
    /// Anything else (another event name, a malformed frame): ignored, as a client would.
    Other,
}

impl Proto {
    pub const PONG: &'static str = "3";
    pub const CONNECT: &'static str = "40";

    pub fn parse(name: &str) -> Result<Proto, String> {
        match name {
            "videomeet" => Ok(Proto::VideoMeet),
            "socketio" => Ok(Proto::SocketIo),
            other => Err(format!("--proto is videomeet or socketio, not `{other}`")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Proto::VideoMeet => "videomeet",
            Proto::SocketIo => "socketio",
        }
    }

    /// The WebSocket URL of `room` on the server at `addr`.
    pub fn url(self, addr: SocketAddr, room: &str) -> String {
        match self {
            Proto::VideoMeet => format!("ws://{addr}/ws/{room}"),
            Proto::SocketIo => {
                format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&room={room}")
            }
        }
    }

    /// The text frame that carries one protocol object, given as its JSON text (callers build
    /// the large signals with `format!`, so they are never parsed and re-serialized here).
    pub fn wrap(self, json: &str) -> String {
        match self {
            Proto::VideoMeet => json.to_string(),
            Proto::SocketIo => {
                let mut s = String::with_capacity(json.len() + 10);
                s.push_str("42[\"msg\",");
                s.push_str(json);
                s.push(']');
                s
            }
        }
    }

    /// The protocol object in a received text frame, if it carries one. (The client uses
    /// [`Proto::decode`], which also names the control frames it must act on.)
    #[allow(dead_code)]
    pub fn unwrap(self, text: &str) -> Option<Value> {
        match self.decode(text) {
            Frame::Msg(v) => Some(v),
            _ => None,
        }
    }

    /// Classifies a received text frame.
    pub fn decode(self, text: &str) -> Frame {
        match self {
            Proto::VideoMeet => match serde_json::from_str::<Value>(text) {
                Ok(v) if v.is_object() => Frame::Msg(v),
                _ => Frame::Other,
            },
            Proto::SocketIo => {
                if text == "2" {
                    return Frame::Ping;
                }
                if text == "1" || text.starts_with("41") {
                    return Frame::Disconnect;
                }
                if let Some(event) = text.strip_prefix("42") {
                    // `42["msg",{...}]`; a namespace or ack id would come before the `[`, and
                    // the contract uses neither.
                    return match serde_json::from_str::<Value>(event) {
                        Ok(Value::Array(mut parts))
                            if parts.len() == 2 && parts[0] == "msg" && parts[1].is_object() =>
                        {
                            Frame::Msg(parts.pop().unwrap_or(Value::Null))
                        }
                        _ => Frame::Other,
                    };
                }
                if text.starts_with("40") {
                    return Frame::Connected;
                }
                if text.starts_with('0') {
                    return Frame::Open;
                }
                Frame::Other
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn videomeet_frames_are_the_objects_themselves() {
        let p = Proto::VideoMeet;
        assert_eq!(p.wrap(r#"{"type":"leave"}"#), r#"{"type":"leave"}"#);
        assert_eq!(
            p.unwrap(r#"{"type":"joined","you":"7"}"#),
            Some(json!({"type":"joined","you":"7"}))
        );
        assert_eq!(p.unwrap("not json"), None);
        assert_eq!(p.unwrap("[1,2]"), None);
        // "2" is a number in JSON, not a ping, for VideoMeet.
        assert_eq!(p.decode("2"), Frame::Other);
        assert_eq!(
            p.url("127.0.0.1:80".parse().unwrap(), "r-1"),
            "ws://127.0.0.1:80/ws/r-1"
        );
    }

    #[test]
    fn socketio_wraps_every_object_as_a_msg_event() {
        let p = Proto::SocketIo;
        let obj = json!({"type":"signal","to":"3","data":{"t":1}});
        let framed = p.wrap(&obj.to_string());
        assert_eq!(framed, format!("42[\"msg\",{obj}]"));
        // The frame is what socket.io-parser would produce: packet type 4 (message), Socket.io
        // type 2 (event), then the JSON array.
        let array: Value = serde_json::from_str(&framed[2..]).unwrap();
        assert_eq!(array, json!(["msg", obj]));
        assert_eq!(p.unwrap(&framed), Some(obj));
    }

    #[test]
    fn socketio_control_frames() {
        let p = Proto::SocketIo;
        assert_eq!(
            p.decode(r#"0{"sid":"a","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#),
            Frame::Open
        );
        assert_eq!(p.decode(r#"40{"sid":"b"}"#), Frame::Connected);
        assert_eq!(p.decode("40"), Frame::Connected);
        assert_eq!(p.decode("2"), Frame::Ping);
        assert_eq!(p.decode("41"), Frame::Disconnect);
        assert_eq!(p.decode("1"), Frame::Disconnect);
        assert_eq!(p.decode(r#"42["other",{"type":"x"}]"#), Frame::Other);
        assert_eq!(p.decode(r#"42["msg","text"]"#), Frame::Other);
        assert_eq!(p.decode("42not json"), Frame::Other);
        assert_eq!(p.unwrap("2"), None);
        assert_eq!(Proto::PONG, "3");
        assert_eq!(Proto::CONNECT, "40");
    }

    #[test]
    fn socketio_url_carries_the_room() {
        let url = Proto::SocketIo.url("127.0.0.1:13000".parse().unwrap(), "load-3");
        assert_eq!(
            url,
            "ws://127.0.0.1:13000/socket.io/?EIO=4&transport=websocket&room=load-3"
        );
    }

    #[test]
    fn names_round_trip() {
        for p in [Proto::VideoMeet, Proto::SocketIo] {
            assert_eq!(Proto::parse(p.name()), Ok(p));
        }
        assert!(Proto::parse("sse").is_err());
    }
}
