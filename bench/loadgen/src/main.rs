//! loadgen: simulated VideoMeet meetings over the real protocol, with the server's memory and
//! CPU sampled from /proc. `loadgen --help` lists the scenarios with example command lines;
//! docs/BENCHMARKS.md has what they printed.
//!
//! Layout: `args` (command line), `proto` (VideoMeet or Socket.io framing), `client` (one
//! connection), `workload` (what a meeting does), `proc` (memory and CPU from /proc), `stats`
//! (latencies, errors by kind, the summary block), `plot` (CSV and SVG), `metrics` (the
//! server's /metrics), `cgroup` (the flood's memory limit), `pacer` (the throughput scenario's
//! `--rate` schedule), and `scenarios/*` (one per command).

mod args;
mod cgroup;
mod client;
mod metrics;
mod pacer;
mod plot;
mod proc;
mod proto;
mod scenarios;
mod stats;
mod workload;

use args::Parsed;

#[tokio::main]
async fn main() {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            print!("{}", args::HELP);
            return;
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    proc::raise_fd_limit();
    scenarios::print_header(&args);
    let code = match args.cmd.as_str() {
        "idle" => scenarios::idle::run(&args).await,
        "scale" => scenarios::scale::run(&args).await,
        "throughput" => scenarios::throughput::run(&args).await,
        "soak" => scenarios::soak::run(&args).await,
        "flood" => scenarios::flood::run(&args).await,
        other => {
            eprintln!("loadgen: unknown scenario {other} (idle, scale, throughput, soak, flood)");
            2
        }
    };
    std::process::exit(code);
}
