//! HTTP: routes, the embedded assets, and the WebSocket upgrade that hands a socket (over `io`'s
//! layers) to its `signaling` session. The TLS settings and the names this server answers to are
//! `ops::tls` and `ops::hosts`.
//!
//! Architecture invariant: nothing a request or a frame carries reaches the heap without an
//! arena of `admission` (connections, sockets, in-flight bytes).

pub mod assets;
pub mod http;
