//! The `videomeet` binary: reads the settings, starts logging, serves until SIGINT or SIGTERM.

use std::process::ExitCode;

use std::sync::Arc;

use tokio::net::TcpListener;
use videomeet::admission::budget::CountingAlloc;
use videomeet::ops::config::{self, Command, Config};
use videomeet::ops::state_dir;
use videomeet::ops::tls::{Source, Tls};
use videomeet::Listeners;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() -> ExitCode {
    videomeet::ops::process::no_huge_pages();
    let command = config::parse(
        std::env::args().skip(1),
        |key| std::env::var(key).ok(),
        |path| std::fs::read_to_string(path),
    );
    let mut config = match command {
        Ok(Command::Serve(config)) => *config,
        Ok(Command::SystemdUnit(config, args)) => {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/usr/local/bin/videomeet".into());
            print!("{}", videomeet::ops::systemd::unit(&exe, &args, &config));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Help) => {
            print!("{}", config::usage());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("videomeet {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("videomeet: {message}");
            return ExitCode::from(2);
        }
    };

    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let needed = videomeet::ops::process::descriptors_needed(&config.limits);
    match videomeet::ops::process::raise_open_file_limit(needed) {
        Some(got) if got < needed => log::warn!(
            "the open-file limit is {got}, below the {needed} the memory budget admits; \
             raise it (LimitNOFILE= in the service, ulimit -Hn) or fewer people can join"
        ),
        _ => {}
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("videomeet: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let http = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("videomeet: cannot listen on {}: {e}", config.listen);
                return ExitCode::FAILURE;
            }
        };
        config.state_dir = config.state_dir.as_deref().and_then(state_dir::open);
        let https = match https(&config).await {
            Ok(https) => https,
            Err(message) => {
                eprintln!("videomeet: {message}");
                return ExitCode::FAILURE;
            }
        };
        if let Some((_, tls)) = &https {
            tokio::spawn(reload_on_hangup(tls.clone()));
        }
        let mut stun = match config.stun_listen {
            None => None,
            Some(addr) => {
                let explicit = config.stun_listen_explicit;
                let bound = bind_optional("STUN/TURN", "--stun-listen", addr, explicit, |a| {
                    videomeet::turn::server::Sockets::bind(a)
                });
                match bound.await {
                    Ok(sockets) => sockets,
                    Err(message) => {
                        eprintln!("videomeet: {message}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        if let (Some(sockets), Some(addr), Some((_, tls))) =
            (stun.as_mut(), config.turns_listen, https.as_ref())
        {
            let explicit = config.turns_listen_explicit;
            let bound = bind_optional("TURN over TLS", "--turns-listen", addr, explicit, |a| {
                TcpListener::bind(a)
            });
            match bound.await {
                Ok(listener) => sockets.tls = listener.map(|l| (l, tls.clone())),
                Err(message) => {
                    eprintln!("videomeet: {message}");
                    return ExitCode::FAILURE;
                }
            }
        }
        let listeners = Listeners {
            http: Some(http),
            https,
            stun,
        };
        match videomeet::serve_on(listeners, config, stop_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("videomeet: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Binds the HTTPS port and loads the certificate. A taken default port only turns HTTPS off
/// (so a second instance for testing still starts); an explicit `--tls-listen` that cannot
/// bind, or a certificate that cannot load, is an error.
async fn https(config: &Config) -> Result<Option<(TcpListener, Arc<Tls>)>, String> {
    let Some(addr) = config.tls_listen else {
        return Ok(None);
    };
    let explicit = config.tls_listen_explicit;
    let bound = bind_optional("HTTPS", "--tls-listen", addr, explicit, |a| {
        TcpListener::bind(a)
    });
    let Some(listener) = bound.await? else {
        return Ok(None);
    };
    let source = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Source::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => Source::SelfSigned {
            dir: config.state_dir.clone(),
        },
    };
    let tls = Tls::load(source)?;
    Ok(Some((listener, Arc::new(tls))))
}

/// Binds a service's port. A taken default port only turns the service off, with a warning
/// naming the flag to set (so a second instance for testing still starts); an explicit address
/// that cannot bind is an error, because the operator asked for exactly that.
async fn bind_optional<T, F, Fut>(
    what: &str,
    flag: &str,
    addr: std::net::SocketAddr,
    explicit: bool,
    bind: F,
) -> Result<Option<T>, String>
where
    F: FnOnce(std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<T>>,
{
    match bind(addr).await {
        Ok(bound) => Ok(Some(bound)),
        Err(e) if !explicit => {
            log::warn!("{what} is off: cannot listen on {addr} ({e}); set {flag}");
            Ok(None)
        }
        Err(e) => Err(format!("cannot listen on {addr} for {what}: {e}")),
    }
}

/// SIGHUP reads the certificate files again; meetings in progress are not touched.
async fn reload_on_hangup(tls: Arc<Tls>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangup.recv().await.is_some() {
        match tls.reload() {
            Ok(fingerprint) => log::info!("reloaded the certificate: SHA-256 {fingerprint}"),
            Err(e) => log::error!("kept the old certificate: {e}"),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
