//! Hand-made bad WebSocket frames: each one closes its own socket cleanly with the right close
//! code, nothing panics, and the server carries on for everyone else.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::Server;

/// A client frame: first byte as given, masked with key 0 unless `masked` is false.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    if payload.len() < 126 {
        out.push(mask_bit | payload.len() as u8);
    } else {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    if masked {
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn bad_frames_close_their_socket_with_the_right_code_and_nothing_panics() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = panics.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let server = Server::start(&[]).await;
    let join =
        br#"{"type":"join","name":"x","client":"client-frames1","audio":false,"video":false}"#;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("reserved bits set", frame(0xC1, b"hi", true), 1002),
        ("reserved data opcode 3", frame(0x83, b"hi", true), 1002),
        ("reserved control opcode 11", frame(0x8B, b"", true), 1002),
        (
            "bad UTF-8 in a text frame",
            frame(0x81, &[0xff, 0xfe, 0xfd], true),
            1007,
        ),
        ("a fragmented ping", frame(0x09, b"p", true), 1002),
        ("an unmasked client frame", frame(0x81, b"hi", false), 1002),
        (
            "a continuation with nothing to continue",
            frame(0x80, b"hi", true),
            1002,
        ),
        (
            "a control frame over 125 bytes",
            frame(0x89, &[b'p'; 126], true),
            1002,
        ),
        (
            "a close frame with a 1-byte payload",
            frame(0x88, b"x", true),
            1002,
        ),
    ];
    for (i, (what, bytes, want)) in cases.iter().enumerate() {
        for joined_first in [false, true] {
            let mut raw = server.raw_ws(&format!("frames-{i}")).await;
            if joined_first {
                raw.write_all(&frame(0x81, join, true)).await.unwrap();
            }
            raw.write_all(bytes).await.unwrap();
            let mut got = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut got)).await;
            assert!(read.is_ok(), "{what}: the socket was closed in time");
            // Skip whatever came before (joined, peer-joined...) to the close frame.
            let close =
                find_close(&got).unwrap_or_else(|| panic!("{what}: no close frame in {got:?}"));
            assert_eq!(close, *want, "{what} (joined first: {joined_first})");
        }
    }

    // Everyone else is fine.
    let (mut ada, a) = server.join("after", "ada").await;
    let (mut bo, _) = server.join("after", "bo").await;
    ada.recv().await;
    bo.send(serde_json::json!({"type":"signal","to":a["you"],"data":"still here"}))
        .await;
    assert_eq!(ada.recv().await["data"], "still here");
    let rejected = server.metric("videomeet_frames_rejected_total").await;
    assert!(rejected >= cases.len() as f64 * 2.0, "{rejected}");
    assert_eq!(panics.load(Ordering::SeqCst), 0, "no panic anywhere");
    server.shutdown().await;
}

/// The status code of the first close frame in a server-to-client byte stream.
fn find_close(mut bytes: &[u8]) -> Option<u16> {
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let (len, header) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().ok()?) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let payload = bytes.get(header..header + len)?;
        if opcode == 0x8 {
            return Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
        }
        bytes = &bytes[header + len..];
    }
    None
}
