//! The frame scanner between the socket and tungstenite: it sees every byte a client sends, frame
//! by frame (RFC 6455 section 5.2), before tungstenite does.
//!
//! Three jobs, all pure (no I/O, no clock; [`crate::io::inflight::ChargedIo`] drives it):
//! - **Hold large frames back until whole.** tungstenite reserves a frame's declared length as
//!   soon as it parses the header, so a header promising 1 MiB followed by a trickle would make
//!   every trickler hold a 1 MiB allocation that no arena sees. Frames longer than `fragment`
//!   are gathered here, in chunks the caller charges as they arrive, and handed over complete.
//! - **Keep tungstenite's read buffer small.** That buffer never shrinks: one 4 KiB offer would
//!   leave a socket holding 8 KiB until it closes. A gathered data frame is handed over as a
//!   fragmented message of frames no longer than `fragment` (RFC 6455 section 5.4; tungstenite
//!   joins them, as it would a browser's), and a delivery never passes the end of a frame, so
//!   the buffer always has room for the next frame without growing.
//! - **Know where messages end.** A data message ends with its final fragment; control frames
//!   (ping, pong, close) may come between its fragments and do not end it (section 5.4). The
//!   in-flight charge and the message deadline follow the data message until its final
//!   fragment has been handed over, whatever control frames the client interleaves.

use std::collections::VecDeque;

/// Where the byte stream stands.
#[derive(Debug)]
enum Scan {
    /// At a frame boundary: gathering the header (2 to 14 bytes) before anyone sees it.
    Header(heapless::Vec<u8, 14>),
    /// Passing a frame's payload through; this many bytes are left.
    Stream(u64),
    /// Gathering a large frame whole before tungstenite sees its header; this many are left.
    Gather(u64),
}

/// The total header length once its first two bytes are known.
pub fn header_len(first_two: &[u8]) -> usize {
    let ext = match first_two[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if first_two[1] & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

/// The payload length a complete header declares.
pub fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => u64::from_be_bytes(header[2..10].try_into().unwrap_or([0xff; 8])),
        n => u64::from(n),
    }
}

/// One piece of the byte stream ready for tungstenite.
#[derive(Debug)]
struct Piece {
    bytes: Vec<u8>,
    /// The last piece of a frame: a delivery stops after it.
    ends_frame: bool,
    /// The last piece of a message (a data message's final fragment, or a control frame
    /// outside a data message): what was held for it may be given back once it is delivered.
    ends_message: bool,
}

/// What one [`Reframer::deliver`] handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub bytes: usize,
    /// The delivery ended a message: tungstenite now holds it whole.
    pub ended_message: bool,
}

/// The scanner and re-framer of one socket's incoming bytes.
#[derive(Debug)]
pub struct Reframer {
    /// Longest frame payload handed over as it came; longer data frames are split.
    fragment: usize,
    /// Frames above this are refused by tungstenite anyway; their headers pass at once.
    max_frame: u64,
    scan: Scan,
    /// A data message has begun (a text or binary frame without FIN) and its final fragment
    /// has not been scanned yet.
    open: bool,
    /// The frame now being scanned ends a message.
    frame_ends_message: bool,
    /// Bytes ready for tungstenite, in arrival order (the front piece from `offset`).
    ready: VecDeque<Piece>,
    offset: usize,
    /// A large frame being gathered: its header and the payload so far.
    gather: Vec<Vec<u8>>,
}

impl Reframer {
    pub fn new(fragment: usize, max_frame: u64) -> Reframer {
        Reframer {
            fragment: fragment.max(1),
            max_frame,
            scan: Scan::Header(heapless::Vec::new()),
            open: false,
            frame_ends_message: false,
            ready: VecDeque::new(),
            offset: 0,
            gather: Vec::new(),
        }
    }

    /// True when nothing is ready for tungstenite (more must be read first).
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    /// Bytes taken in and not yet handed over: ready, being gathered, or a partial header.
    /// A fresh re-framer with the same settings: what this one held is dropped.
    pub fn emptied(&self) -> Reframer {
        Reframer::new(self.fragment, self.max_frame)
    }

    pub fn queued_bytes(&self) -> u64 {
        let ready: usize = self.ready.iter().map(|p| p.bytes.len()).sum::<usize>() - self.offset;
        let gathered: usize = self.gather.iter().map(Vec::len).sum();
        let header = match &self.scan {
            Scan::Header(h) => h.len(),
            _ => 0,
        };
        (ready + gathered + header) as u64
    }

    /// Sorts freshly read bytes into "ready for tungstenite" and "held back", frame by frame.
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.scan {
                Scan::Header(header) => {
                    let need = if header.len() < 2 {
                        2
                    } else {
                        header_len(header)
                    };
                    let take = (need - header.len()).min(data.len());
                    let _ = header.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if header.len() < 2 || header.len() < header_len(header) {
                        continue;
                    }
                    let len = payload_len(header);
                    let bytes = header.to_vec();
                    self.frame_ends_message = self.frame_starts(bytes[0]);
                    if len > self.fragment as u64 && len <= self.max_frame {
                        self.gather.push(bytes);
                        self.scan = Scan::Gather(len);
                    } else {
                        self.ready.push_back(Piece {
                            bytes,
                            ends_frame: len == 0,
                            ends_message: len == 0 && self.frame_ends_message,
                        });
                        self.scan = if len == 0 {
                            Scan::Header(heapless::Vec::new())
                        } else {
                            Scan::Stream(len)
                        };
                    }
                }
                Scan::Stream(left) | Scan::Gather(left) => {
                    let take = (*left).min(data.len() as u64) as usize;
                    *left -= take as u64;
                    let done = *left == 0;
                    let gathering = matches!(self.scan, Scan::Gather(_));
                    if take > 0 {
                        let part = data[..take].to_vec();
                        if gathering {
                            self.gather.push(part);
                        } else {
                            self.ready.push_back(Piece {
                                bytes: part,
                                ends_frame: done,
                                ends_message: done && self.frame_ends_message,
                            });
                        }
                    }
                    data = &data[take..];
                    if done {
                        if gathering {
                            self.hand_over_gathered();
                        }
                        self.scan = Scan::Header(heapless::Vec::new());
                    }
                }
            }
        }
    }

    /// Notes what a frame with this first header byte does to the message in progress, and
    /// returns whether the frame ends a message. An out-of-order frame (a continuation with no
    /// message, a new message inside one) is tungstenite's to refuse; the socket then closes.
    fn frame_starts(&mut self, first: u8) -> bool {
        let fin = first & 0x80 != 0;
        match first & 0x0f {
            // Continuation, text, binary: the data message goes on until a FIN.
            0..=2 => {
                self.open = !fin;
                fin
            }
            // Control frames (and reserved opcodes, which tungstenite refuses): they end a
            // "message" of their own only outside a data message.
            _ => !self.open,
        }
    }

    /// Moves a whole gathered frame to `ready`: a masked data frame as fragments of at most
    /// `fragment` bytes, anything else (a control frame, an unmasked frame) as it came, for
    /// tungstenite to judge.
    fn hand_over_gathered(&mut self) {
        let ends_message = self.frame_ends_message;
        let header = std::mem::take(&mut self.gather[0]);
        let opcode = header[0] & 0x0f;
        let masked = header[1] & 0x80 != 0;
        if opcode > 2 || !masked {
            self.gather[0] = header;
            let n = self.gather.len();
            for (i, bytes) in self.gather.drain(..).enumerate() {
                self.ready.push_back(Piece {
                    bytes,
                    ends_frame: i + 1 == n,
                    ends_message: i + 1 == n && ends_message,
                });
            }
            return;
        }
        let key = &header[header.len() - 4..];
        let mut payload = Vec::with_capacity(self.gather[1..].iter().map(Vec::len).sum());
        for part in self.gather.drain(..).skip(1) {
            payload.extend_from_slice(&part);
        }
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= key[i & 3];
        }
        let count = payload.len().div_ceil(self.fragment);
        for (i, piece) in payload.chunks(self.fragment).enumerate() {
            // FIN only on the last, and only if the gathered frame had it; the first keeps the
            // opcode (and any RSV bits, for tungstenite to refuse), the rest are continuations.
            let last = i + 1 == count;
            let fin = if last { header[0] & 0x80 } else { 0 };
            let op = if i == 0 { header[0] & 0x7f } else { 0 };
            let mut frame = Vec::with_capacity(piece.len() + 8);
            frame.push(fin | op);
            if piece.len() < 126 {
                frame.push(0x80 | piece.len() as u8);
            } else {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(piece.len() as u16).to_be_bytes());
            }
            // A zero mask key: the payload above is already unmasked.
            frame.extend_from_slice(&[0; 4]);
            frame.extend_from_slice(piece);
            self.ready.push_back(Piece {
                bytes: frame,
                ends_frame: true,
                ends_message: last && ends_message,
            });
        }
    }

    /// Copies ready bytes into `out`, up to the end of one frame.
    pub fn deliver(&mut self, out: &mut [u8]) -> Delivered {
        let mut done = Delivered {
            bytes: 0,
            ended_message: false,
        };
        while done.bytes < out.len() {
            let Some(front) = self.ready.front() else {
                break;
            };
            let n = (front.bytes.len() - self.offset).min(out.len() - done.bytes);
            out[done.bytes..done.bytes + n]
                .copy_from_slice(&front.bytes[self.offset..self.offset + n]);
            self.offset += n;
            done.bytes += n;
            if self.offset == front.bytes.len() {
                let (ends_frame, ends_message) = (front.ends_frame, front.ends_message);
                self.ready.pop_front();
                self.offset = 0;
                if ends_frame {
                    done.ended_message = ends_message;
                    break;
                }
            }
        }
        // A burst of small frames grows the queue; an idle socket should not keep it.
        if self.ready.is_empty() && self.ready.capacity() > 4 {
            self.ready = VecDeque::new();
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked frame (zero key, so the payload reads as it is).
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first];
        if payload.len() < 126 {
            f.push(0x80 | payload.len() as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(&[0; 4]);
        f.extend_from_slice(payload);
        f
    }

    /// Delivers everything, returning each delivery's bytes and whether it ended a message.
    fn drain(r: &mut Reframer) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while !r.is_empty() {
            let d = r.deliver(&mut buf);
            out.push((buf[..d.bytes].to_vec(), d.ended_message));
        }
        out
    }

    #[test]
    fn headers_of_every_length_form_parse() {
        assert_eq!(header_len(&[0x81, 0x05]), 2);
        assert_eq!(header_len(&[0x81, 0x85]), 6);
        assert_eq!(header_len(&[0x81, 0xfe]), 8);
        assert_eq!(header_len(&[0x81, 0xff]), 14);
        assert_eq!(payload_len(&[0x81, 0x85, 0, 0, 0, 0]), 5);
        assert_eq!(payload_len(&[0x81, 0xfe, 0x01, 0x00, 0, 0, 0, 0]), 256);
        let mut long = vec![0x81, 0xff];
        long.extend_from_slice(&1_000_000u64.to_be_bytes());
        assert_eq!(payload_len(&long), 1_000_000);
    }

    #[test]
    fn a_single_frame_message_ends_with_its_frame() {
        let mut r = Reframer::new(64, 1 << 20);
        r.push(&frame(0x81, b"hello"));
        let out = drain(&mut r);
        assert_eq!(out.len(), 1);
        assert!(out[0].1, "a FIN text frame ends its message");
    }

    #[test]
    fn control_frames_between_fragments_do_not_end_the_message() {
        let mut r = Reframer::new(64, 1 << 20);
        r.push(&frame(0x01, b"part one, "));
        r.push(&frame(0x89, b"ping"));
        r.push(&frame(0x8a, b"pong"));
        r.push(&frame(0x00, b"part two, "));
        r.push(&frame(0x89, b""));
        r.push(&frame(0x80, b"the end"));
        let ends: Vec<bool> = drain(&mut r).into_iter().map(|(_, e)| e).collect();
        assert_eq!(ends, [false, false, false, false, false, true]);
    }

    #[test]
    fn a_control_frame_outside_a_message_ends_a_message_of_its_own() {
        let mut r = Reframer::new(64, 1 << 20);
        r.push(&frame(0x8a, b"pong"));
        r.push(&frame(0x89, b""));
        let ends: Vec<bool> = drain(&mut r).into_iter().map(|(_, e)| e).collect();
        assert_eq!(ends, [true, true]);
    }

    #[test]
    fn a_large_fragment_is_gathered_and_split_keeping_the_message_open() {
        let mut r = Reframer::new(16, 1 << 20);
        // A 40-byte first fragment (no FIN), trickled: nothing is handed over until it is whole.
        let first = frame(0x01, &[b'a'; 40]);
        r.push(&first[..20]);
        assert!(r.is_empty(), "held back while it trickles");
        assert_eq!(r.queued_bytes(), 20);
        r.push(&first[20..]);
        r.push(&frame(0x89, b"ping"));
        r.push(&frame(0x80, &[b'b'; 40]));
        let out = drain(&mut r);
        // 40 bytes as 3 short frames, none FIN; the ping; 40 more as 3, the last FIN.
        assert_eq!(out.len(), 7);
        assert!(out[..6].iter().all(|(_, e)| !e));
        assert!(out[6].1);
        assert_eq!(
            out[2].0[0], 0x00,
            "no FIN on the first fragment's last piece"
        );
        assert_eq!(out[6].0[0], 0x80, "FIN on the final piece");
        assert!(out.iter().all(|(b, _)| b.len() <= 16 + 8));
    }

    #[test]
    fn a_delivery_stops_at_the_end_of_a_frame() {
        let mut r = Reframer::new(64, 1 << 20);
        r.push(b"\x81\x02hi\x81\x03you");
        let mut buf = [0u8; 64];
        let d = r.deliver(&mut buf);
        assert_eq!(&buf[..d.bytes], b"\x81\x02hi", "only the first frame");
        let d = r.deliver(&mut buf);
        assert_eq!(&buf[..d.bytes], b"\x81\x03you");
    }
}
