//! HTTP and the bytes under WebSockets: routes, the embedded assets, TLS, the names this
//! server answers to, and `io/` (the in-flight charge, the frame re-framer, write coalescing).
//!
//! Architecture invariant: nothing a request or a frame carries reaches the heap without an
//! arena of `admission` (connections, sockets, in-flight bytes).

pub mod assets;
pub mod hosts;
pub mod http;
pub mod io;
pub mod tls;
