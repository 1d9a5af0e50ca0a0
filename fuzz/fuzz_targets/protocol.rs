//! The signaling decoder: any text a client can send in a frame. It must return a message or a
//! `bad_request`, never panic, and a message it accepts must satisfy the documented bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use videomeet::signaling::protocol::{parse_client, parse_name, ClientMsg};

fuzz_target!(|data: &[u8]| {
    // tungstenite hands the session only valid UTF-8; anything else is closed with 1007 first.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(msg) = ClientMsg::parse(text) {
        if let ClientMsg::Join(join) = &msg {
            assert!(!join.name.is_empty() && join.name.chars().count() <= 64);
            assert!(!join.name.chars().any(char::is_control));
        }
        if let ClientMsg::Chat { text } = &msg {
            assert!(!text.is_empty() && text.len() <= 2048);
        }
    }
    let _ = parse_name(text);
    let _ = parse_client(text);
});
