//! Every integration test, in one binary: one link of the crate instead of fourteen. Each
//! module drives the real server (in this process, on loopback) or the real binary, with real
//! clients; `common` is the harness.
//!
//! One policy for tools from outside (coturn, HAProxy, systemd-analyze): a test that needs one
//! fails loudly, naming the Debian package, when it is missing; it never passes silently.
//! `.ci/run` installs them.
//!
//! Run one module with `cargo test --test integration attack::`.

mod common;

/// The hostile suite of issue 13: each attack from many loopback addresses, and an honest
/// participant who still joins and signals meanwhile.
mod attack;
/// The service unit the binary prints is one systemd accepts, and as locked down as we say.
mod deploy;
/// The hostile flood on loopback: 2,000 trickling sockets stay inside a 64 MiB budget, and an
/// honest pair still meets.
mod flood;
/// Hand-made bad WebSocket frames: each one closes its own socket cleanly with the right close
/// code, and the server carries on.
mod frames;
/// Chat, raised hands and the host's controls, against a real server on loopback.
mod host;
/// The HTTP side: pages, embedded assets, caching, headers, health and metrics.
mod http;
/// Knock to enter ("Ask to join") and the generic room message, real sockets on loopback.
mod knock;
/// Per-address and per-socket limits against a real server: one host cannot take every socket,
/// join without end, guess passwords quickly, or flood its room.
mod limits;
/// The built-in STUN/TURN server, driven over real UDP and TCP sockets: by a small client made
/// of our own codec, and by coturn's clients.
mod relay;
/// More than one machine: two real instances behind HAProxy, configured from
/// `deploy/haproxy.cfg`; when one goes, only its rooms move.
mod scaling;
/// The signaling rules of docs/PROTOCOL.md, each against a real server on loopback.
mod signaling;
/// Smoke test of a whole binary as it ships: it starts, serves the page over HTTP and HTTPS,
/// relays a signal, answers STUN, and stops cleanly on SIGTERM.
mod smoke;
/// Nothing lost on restart: the real binary, killed with SIGKILL, comes back with its rooms,
/// passwords, hosts and seats.
mod store;
/// HTTPS through the real binary: the self-signed certificate is made once and reused across
/// restarts, SIGHUP reloads the operator's files, a stalled handshake is cut.
mod tls;
/// TURN credentials handed out in `joined`: checked by formula, and accepted by a real coturn.
mod turn;

// Every heap figure a test prints or asserts is counted by the allocator the binary uses.
#[global_allocator]
static ALLOC: videomeet::admission::budget::CountingAlloc =
    videomeet::admission::budget::CountingAlloc;
