//! VideoMeet: video meetings for up to six people, in one binary.
//!
//! `main.rs` parses the settings and calls [`serve_on`]; the integration tests call the same
//! function on a loopback port, so they drive exactly what ships. See `ARCHITECTURE.md`.

// The module map (rustfmt keeps it in alphabetical order). Folders are the sections of
// ARCHITECTURE.md; the layers run bottom first in `layering::LAYERS` (util, core, admission, io,
// ops, turn, signaling, web), each importing only those before it (the tests below fail
// otherwise), and the wiring here sits on top of them all.
pub mod admission; // the budget's arenas and the per-address guard
pub mod core; // rooms, ids, passwords, buckets, the budget's numbers: no tokio, no socket, no file
pub mod io; // the byte layers under a WebSocket: in-flight charge, re-framing, coalescing
pub mod ops; // flags, metrics, certificate, room store file, process settings
pub mod signaling; // the wire protocol, one session per socket, the shared `State`
pub mod turn; // the built-in STUN/TURN server, seeing the rooms only through `turn::Seats`
pub mod util; // hex, time, networks: imports nothing of the crate
pub mod web; // HTTP routes, assets, the WebSocket upgrade

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use ops::config::Config;

use admission::{budget, evict, guard};
use ops::{metrics, tls};
use signaling::state::{self, State};
use signaling::{persist, session};
use turn::server as relay;
use web::http;

/// How long shutdown waits for sockets to say goodbye before exiting anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The sockets to serve on: plain HTTP, HTTPS, or both.
#[derive(Default)]
pub struct Listeners {
    pub http: Option<TcpListener>,
    pub https: Option<(TcpListener, Arc<tls::Tls>)>,
    /// The built-in STUN/TURN server's UDP and TCP sockets.
    pub stun: Option<relay::Sockets>,
}

/// Serves HTTP and HTTPS (pages and WebSockets alike) until `shutdown` completes, then closes
/// every socket with 1001 (going away) so clients reconnect to the next instance, and returns.
pub async fn serve_on(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    if let Some(http) = &listeners.http {
        let local = http.local_addr()?;
        log::info!("listening on http://{local}");
        if local.ip().is_unspecified() {
            log::info!("open http://localhost:{}/ in a browser", local.port());
        }
    }
    if let Some((https, tls)) = &listeners.https {
        log_https(https.local_addr()?, tls);
    }
    log::info!("{}", config.limits.summary());

    // The epoch of the relay histogram's stamps, set before any frame is read.
    util::time::stamp(Instant::now());
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = Arc::new(State::new(config, stop_rx));
    if let Some((_, tls)) = &listeners.https {
        state.hosts.add_certificate(tls.clone());
    }
    log::info!(
        "answering to {}, IP addresses and the certificate's names (others: --allowed-hosts)",
        state.hosts.names().collect::<Vec<_>>().join(", ")
    );
    // Every task holds a clone of `done_tx`; when all are gone, `done_rx` yields None.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::spawn(sweep_loop(state.clone(), done_tx.clone()));
    if let Some(sockets) = listeners.stun {
        start_relay(&state, sockets)?;
    }
    if let Some(dir) = state.config.state_dir.clone() {
        persist::load(&state, &dir);
        tokio::spawn(persist::writer(state.clone(), dir, done_tx.clone()));
    }

    let (http, https) = (listeners.http, listeners.https);
    // Where the plain-HTTP port sends visitors whose browser would refuse the camera there.
    let https_port = match &https {
        Some((listener, _)) => Some(listener.local_addr()?.port()),
        None => None,
    };
    tokio::pin!(shutdown);
    loop {
        let (accepted, tls) = tokio::select! {
            accepted = accept(http.as_ref()) => (accepted, None),
            accepted = accept(https.as_ref().map(|(l, _)| l)) => {
                (accepted, https.as_ref().map(|(_, tls)| tls.acceptor()))
            }
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                log::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A trusted proxy carries many clients; they are counted by the address it forwards.
        let proxied = crate::util::cidr::in_networks(peer.ip(), &state.config.trusted_proxies);
        if !proxied
            && state.limits_apply_to(peer.ip())
            && state.guard.connection(peer.ip(), Instant::now()).is_err()
        {
            metrics::bump(&state.metrics.connections_refused);
            log::debug!("{peer}: too many connections, closed");
            continue;
        }
        let Some(slot) = admit_connection(&state, peer.ip(), proxied) else {
            metrics::bump(&state.metrics.connections_refused);
            log::debug!("{peer}: too many connections from its address, closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (state, done) = (state.clone(), done_tx.clone());
        match tls {
            None => {
                tokio::spawn(async move {
                    let Some(held) = take_place(&state, slot).await else {
                        return metrics::bump(&state.metrics.connections_refused);
                    };
                    serve_connection(stream, peer, state, (done, held), https_port).await
                });
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let Some(held) = take_place(&state, slot).await else {
                        return metrics::bump(&state.metrics.connections_refused);
                    };
                    // A client that starts a handshake and stalls gets as long as one that
                    // stalls in its headers.
                    let limit = Duration::from_secs(state.limits().header_timeout_secs);
                    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, peer, state, (done, held), None).await
                        }
                        Ok(Err(e)) => {
                            metrics::bump(&state.metrics.tls_handshakes_failed);
                            log::debug!("TLS handshake failed: {e}");
                        }
                        Err(_) => {
                            metrics::bump(&state.metrics.tls_handshakes_failed);
                            log::debug!("TLS handshake timed out");
                        }
                    }
                });
            }
        }
    }

    log::info!("shutting down: closing sockets with 1001");
    drop((http, https));
    let _ = stop_tx.send(true);
    state.stop.notify_waiters();
    drop(done_tx);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    let _ = tokio::time::timeout_at(deadline, done_rx.recv()).await;
    // WebSocket sessions run in tasks spawned at the upgrade, outside the connection tasks
    // counted above; each holds a socket permit until its 1001 close frame is flushed. Without
    // this wait the process could exit first and browsers would see 1006 instead.
    while state.budget.sockets.used() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Starts the built-in STUN/TURN server; browsers hear of it from the next `joined` on.
fn start_relay(state: &Arc<State>, sockets: relay::Sockets) -> std::io::Result<()> {
    let local = sockets.udp.local_addr()?;
    let tls_port = match &sockets.tls {
        Some((listener, _)) => Some(listener.local_addr()?.port()),
        None => None,
    };
    // Credentials for the built-in relay are made with a secret nobody else knows; it changes
    // on restart, and resumed seats get fresh credentials with their `joined`.
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| std::io::Error::other(e.to_string()))?;
    let secret = util::hex::hex(&secret);
    relay::Relay::start(state.clone(), sockets, &secret);
    let info = state::RelayInfo {
        port: local.port(),
        tls_port,
        turn: crate::core::credentials::TurnConfig {
            urls: Vec::new(),
            secret,
            ttl_secs: state.config.turn.ttl_secs,
        },
    };
    let _ = state.relay.set(info);
    log::info!("STUN and TURN on udp and tcp {local}");
    if let Some(port) = tls_port {
        log::info!("TURN over TLS on port {port}");
    }
    Ok(())
}

/// The next connection on `listener`, or never when there is none.
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Says where HTTPS is and how to recognise the certificate a browser will show.
fn log_https(local: std::net::SocketAddr, tls: &tls::Tls) {
    log::info!("listening on https://{local}");
    let port = local.port();
    if local.ip().is_unspecified() {
        for name in tls.names() {
            let host = match name.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(v6)) if v6.is_loopback() => continue,
                Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
                Ok(ip) if ip.is_loopback() => continue,
                _ => name,
            };
            log::info!("  https://{host}:{port}/");
        }
    }
    let kind = match tls.source() {
        tls::Source::Files { cert, .. } => format!("from {}", cert.display()),
        tls::Source::SelfSigned { .. } => {
            "self-signed: browsers ask once; check the fingerprint matches".to_string()
        }
    };
    log::info!("certificate {kind}: SHA-256 {}", tls.fingerprint());
}

/// What an HTTP connection holds until it ends or is upgraded: its place in the connection
/// arena, and in its address's count.
type ConnectionHeld = (budget::Permit, Option<guard::Slot>);

/// Admits one HTTP connection against its address's cap (unless exempt) and the heap ceiling;
/// its place in the connection arena is taken by [`take_place`].
fn admit_connection(
    state: &Arc<State>,
    ip: std::net::IpAddr,
    proxied: bool,
) -> Option<Option<guard::Slot>> {
    let slot = if !proxied && state.limits_apply_to(ip) {
        Some(
            state
                .guard
                .open(guard::Open::Connection, ip, Instant::now())
                .ok()?,
        )
    } else {
        None
    };
    state.budget.heap_has_room().then_some(slot)
}

/// A place in the connection arena; when it is full, the oldest connection old enough is told
/// to go and this one takes its place (see `evict`), waiting at most a little longer than
/// `evict::MIN_AGE` for one to become old enough.
///
/// The arena's last quarter is only for an address's first few connections, so that newcomers
/// do not queue behind the connections many addresses keep opening: a place freed by eviction
/// goes to one of them.
async fn take_place(state: &State, slot: Option<guard::Slot>) -> Option<ConnectionHeld> {
    const FIRST_FEW: u32 = 4;
    let arena = &state.budget.connections;
    let limit = if slot.as_ref().map_or(true, |s| s.before() < FIRST_FEW) {
        arena.capacity()
    } else {
        budget::open_part(arena.capacity())
    };
    let give_up = Instant::now() + evict::MIN_AGE + Duration::from_millis(500);
    let mut evicted = false;
    while Instant::now() < give_up {
        if let Some(permit) =
            budget::Permit::acquire_within(&state.budget, |b| &b.connections, limit)
        {
            return Some((permit, slot));
        }
        if !evicted {
            evicted = state.connections.evict_oldest(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

async fn serve_connection<S>(
    stream: S,
    peer: std::net::SocketAddr,
    state: Arc<State>,
    _held: (mpsc::Sender<()>, ConnectionHeld),
    https_port: Option<u16>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = state.limits();
    let mut builder = http1::Builder::new();
    builder
        // Without a timer hyper's header timeout does nothing.
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_secs))
        .max_buf_size(16 * 1024)
        .keep_alive(true);
    let svc_state = state.clone();
    let service = service_fn(move |req| http::handle(req, svc_state.clone(), peer, https_port));
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let go = Arc::new(tokio::sync::Notify::new());
    state.connections.push(
        &go,
        state.budget.connections.capacity() as usize,
        Instant::now(),
    );
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                log::debug!("http connection ended: {e}");
            }
        }
        () = go.notified() => {
            metrics::bump(&state.metrics.connections_evicted);
            log::debug!("{peer}: oldest connection closed to make room");
        }
        () = state.stopped() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}

/// Frees held seats whose grace ran out (every second) and expired rooms (every sweep period).
async fn sweep_loop(state: Arc<State>, _done: mpsc::Sender<()>) {
    let sweep_every = Duration::from_secs(state.limits().sweep_secs);
    let mut last_rooms_sweep = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.stopped() => return,
        }
        let now = Instant::now();
        let mut rooms = state.rooms();
        session::deliver_notices(rooms.sweep_away(now));
        if now.duration_since(last_rooms_sweep) >= sweep_every {
            last_rooms_sweep = now;
            let tracked = state.guard.sweep(now);
            log::debug!("{tracked} client addresses tracked");
            let gone = rooms.sweep_expired(now);
            if gone > 0 {
                log::info!("swept {gone} expired rooms, {} remain", rooms.room_count());
            }
            drop(rooms);
            let started = Instant::now();
            budget::return_free_memory();
            log::debug!("returned free memory in {:?}", started.elapsed());
        }
    }
}

/// The layering of the module map, checked on the source: each folder imports only the folders
/// below it, and the bottom two import no runtime, no socket and (`core`) no file system.
#[cfg(test)]
mod layering {
    use std::path::Path;

    /// The folders, bottom first. A folder may import itself and the folders before it; the
    /// wiring (`lib.rs`, `main.rs`) sits above them all.
    const LAYERS: [&str; 8] = [
        "util",
        "core",
        "admission",
        "io",
        "ops",
        "turn",
        "signaling",
        "web",
    ];

    /// Every `crate::` path and every external crate a folder's files name (tests included:
    /// a test that needs a higher layer is a sign the code does too).
    fn imports(folder: &str) -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src")
            .join(folder);
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("the folder exists") {
            let path = entry.expect("readable").path();
            let text = std::fs::read_to_string(&path).expect("readable");
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for word in code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                if word.starts_with("crate::")
                    || word.starts_with("super::super")
                    || word.starts_with("tokio")
                    || word.starts_with("hyper")
                    || word.contains("tungstenite")
                    || word.starts_with("std::net::Tcp")
                    || word.starts_with("std::net::Udp")
                    || word.starts_with("std::fs")
                {
                    found.push((name.clone(), word.to_string()));
                }
            }
        }
        found
    }

    /// Architecture invariant: imports run one way, from the wiring down to `util`.
    #[test]
    fn every_folder_imports_only_the_folders_below_it() {
        let mut bad = Vec::new();
        for (i, folder) in LAYERS.iter().enumerate() {
            for (file, word) in imports(folder) {
                let Some(target) = word.strip_prefix("crate::") else {
                    continue;
                };
                let target = target.split("::").next().unwrap_or(target);
                if !target.is_empty() && !LAYERS[..=i].contains(&target) {
                    bad.push(format!("{folder}/{file} names {word}"));
                }
            }
        }
        assert!(bad.is_empty(), "imports that run upwards: {bad:#?}");
    }

    /// Every folder of `src/` has its place in [`LAYERS`], so a new one cannot dodge the rule.
    #[test]
    fn every_folder_is_a_layer() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(src).expect("src exists") {
            let path = entry.expect("readable").path();
            if path.is_dir() {
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                assert!(LAYERS.contains(&name.as_str()), "src/{name} is in no layer");
            } else {
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                assert!(
                    ["lib.rs", "main.rs"].contains(&name.as_str()),
                    "src/{name}: a module outside the folders"
                );
            }
        }
    }

    /// Architecture invariant: the room core imports no runtime, no socket, no file system.
    #[test]
    fn the_core_imports_no_runtime_socket_or_file() {
        let bad: Vec<_> = imports("core")
            .into_iter()
            .filter(|(_, word)| !word.starts_with("crate::"))
            .collect();
        assert!(bad.is_empty(), "core reaches out: {bad:?}");
    }

    #[test]
    fn util_imports_no_runtime_or_socket() {
        let bad: Vec<_> = imports("util")
            .into_iter()
            .filter(|(_, word)| !word.starts_with("crate::util") && !word.starts_with("std::fs"))
            .collect();
        assert!(bad.is_empty(), "util imports: {bad:?}");
    }
}
