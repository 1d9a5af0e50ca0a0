//! The signaling side of a WebSocket: the wire contract and one session per socket.
//!
//! - `protocol`: client messages decoded in one borrowed pass, server messages, error and close
//!   codes (`docs/PROTOCOL.md` mirrors it).
//! - `session`: the reader loop, which decodes and dispatches; `handlers`, one function per
//!   client message; `outbox`, the bounded queue and the writer task.
//! - `state`: what every session shares (`State`, the rooms behind one lock), and the seat
//!   directory the relay asks; `persist`, the room store's tasks on the live map.
//!
//! Architecture invariant: a session never waits on another session, and never holds the room
//! lock across an `.await`.

pub mod handlers;
pub mod outbox;
pub mod persist;
pub mod protocol;
pub mod session;
pub mod state;
