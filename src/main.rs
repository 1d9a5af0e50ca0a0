//! The `videomeet` binary: reads the settings, starts logging, serves until SIGINT or SIGTERM.

use std::process::ExitCode;

use videomeet::budget::CountingAlloc;
use videomeet::config::{self, Command};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() -> ExitCode {
    let command = config::parse(
        std::env::args().skip(1),
        |key| std::env::var(key).ok(),
        |path| std::fs::read_to_string(path),
    );
    let config = match command {
        Ok(Command::Serve(config)) => *config,
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
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("videomeet: cannot listen on {}: {e}", config.listen);
                return ExitCode::FAILURE;
            }
        };
        match videomeet::serve(listener, config, stop_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("videomeet: {e}");
                ExitCode::FAILURE
            }
        }
    })
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
