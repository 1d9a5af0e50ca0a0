//! VideoMeet: video meetings for up to six people, in one binary.
//!
//! `main.rs` parses the settings and calls [`serve`]; the integration tests call the same
//! function on a loopback port, so they drive exactly what ships. See `ARCHITECTURE.md`.

pub mod assets;
pub mod budget;
pub mod config;
pub mod http;
pub mod inflight;
pub mod limits;
pub mod metrics;
pub mod password;
pub mod protocol;
pub mod rooms;
pub mod session;
pub mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use config::Config;
use state::State;

/// How long shutdown waits for sockets to say goodbye before exiting anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Serves HTTP and WebSockets on `listener` until `shutdown` completes, then closes every
/// socket with 1001 (going away) so clients reconnect to the next instance, and returns.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    log::info!("listening on http://{local}");
    if local.ip().is_unspecified() {
        log::info!("open http://localhost:{}/ in a browser", local.port());
    }
    log::info!("{}", config.limits.summary());

    let (stop_tx, stop_rx) = watch::channel(false);
    let state = Arc::new(State::new(config, stop_rx));
    // Every task holds a clone of `done_tx`; when all are gone, `done_rx` yields None.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::spawn(sweep_loop(state.clone(), done_tx.clone()));

    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _addr)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                log::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream, state.clone(), done_tx.clone()));
    }

    log::info!("shutting down: closing sockets with 1001");
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_tx);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, done_rx.recv()).await;
    Ok(())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    state: Arc<State>,
    _done: mpsc::Sender<()>,
) {
    let limits = state.limits();
    let mut builder = http1::Builder::new();
    builder
        // Without a timer hyper's header timeout does nothing.
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_secs))
        .max_buf_size(16 * 1024)
        .keep_alive(true);
    let svc_state = state.clone();
    let service = service_fn(move |req| http::handle(req, svc_state.clone()));
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                log::debug!("http connection ended: {e}");
            }
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
            let gone = rooms.sweep_expired(now);
            if gone > 0 {
                log::info!("swept {gone} expired rooms, {} remain", rooms.room_count());
            }
        }
    }
}
