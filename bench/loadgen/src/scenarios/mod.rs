//! One module per command. They share the participants (crate::workload), the sampler
//! (crate::proc) and the output helpers below, so that every scenario reports memory, errors
//! and its summary the same way.

pub mod flood;
pub mod idle;
pub mod scale;
pub mod soak;
pub mod throughput;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::args::Args;
use crate::client::{OpenOpts, Target};
use crate::proc::{self, Reading, Sample};
use crate::stats::{Stats, Summary};
use crate::workload::Ctx;

/// A number that differs between runs, for room names and `client` ids: a second run against
/// the same server must not meet the first one's rooms or held seats.
pub fn run_tag() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b) % 1_000_000
}

pub fn ctx(args: &Args, stats: Arc<Stats>, block: u8, run: u32, epoch: Instant) -> Arc<Ctx> {
    Arc::new(Ctx {
        target: Target {
            addr: args.addr,
            proto: args.proto,
        },
        stats,
        gate: Arc::new(Semaphore::new(args.connect_concurrency)),
        epoch,
        opts: OpenOpts {
            retries: args.connect_retries,
            rcvbuf: None,
        },
        churn: args.churn,
        block,
        run,
    })
}

/// The server's summed reading, or zeros (and a warning) if every process is gone.
pub fn reading(pids: &[u32]) -> Reading {
    proc::read_sum(pids).unwrap_or_else(|| {
        eprintln!("loadgen: no server process readable ({pids:?})");
        Reading::default()
    })
}

/// `KEY_kib` for the sum, and `KEY_kib.NAME_PID` for each process when there are several.
pub fn memory_kv(s: &mut Summary, key: &str, pids: &[u32], pick: fn(&Reading) -> u64) {
    let each: Vec<(u32, Reading)> = pids
        .iter()
        .map(|p| (*p, proc::read(*p).unwrap_or_default()))
        .collect();
    s.kv(
        &format!("{key}_kib"),
        each.iter().map(|(_, r)| pick(r)).sum::<u64>(),
    );
    if pids.len() > 1 {
        for (pid, r) in &each {
            s.kv(&format!("{key}_kib.{}_{pid}", proc::comm(*pid)), pick(r));
        }
    }
}

/// Writes the CSV and SVGs asked for.
pub fn write_outputs(args: &Args, what: &str, samples: &[Sample]) {
    let report = |r: std::io::Result<()>, path: &str| match r {
        Ok(()) => println!("wrote {path}"),
        Err(e) => eprintln!("loadgen: cannot write {path}: {e}"),
    };
    if let Some(p) = &args.csv {
        report(crate::plot::write_csv(p, &args.pids, samples), p);
    }
    if let Some(p) = &args.svg {
        report(crate::plot::write_svg_time(p, what, samples), p);
    }
    if let Some(p) = &args.svg_participants {
        report(crate::plot::write_svg_participants(p, what, samples), p);
    }
}

/// The process list line every run starts with, so a pasted result says what was measured.
pub fn print_header(args: &Args) {
    let names: Vec<String> = args
        .pids
        .iter()
        .map(|p| format!("{} ({})", p, proc::comm(*p)))
        .collect();
    println!(
        "loadgen {}: server {} ({}), watching pid {}",
        args.cmd,
        args.addr,
        args.proto.name(),
        names.join(", ")
    );
}
