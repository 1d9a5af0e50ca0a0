//! `scale`: N participants in rooms of `--room-size`, the full meeting workload in every room,
//! then everyone held open (answering heartbeats) for `--hold` s while RSS is sampled. The
//! idle baseline is read before the first connect, so the memory per participant can be given
//! both over the baseline and as total RSS / N.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::args::Args;
use crate::proc::{self, Sampler};
use crate::stats::{mib, Stats, Summary};
use crate::workload::{Cmd, Meeting};

pub async fn run(args: &Args) -> i32 {
    let n = args.participants;
    let size = args.room_size;
    let rooms = n.div_ceil(size);
    let run = super::run_tag();
    let stats = Arc::new(Stats::default());
    let epoch = Instant::now();
    let idle = super::reading(&args.pids);
    println!(
        "idle before start: VmRSS {} MiB, VmHWM {} MiB",
        mib(idle.rss_kib),
        mib(idle.hwm_kib)
    );
    let sampler = Sampler::start(
        args.pids.clone(),
        args.sample_every(500),
        epoch,
        stats.clone(),
    );
    let ctx = super::ctx(args, stats.clone(), 1, run, epoch);

    // One conductor per room: it runs the workload, reports, then waits for the end of the
    // hold to close its participants.
    let (done_tx, mut done_rx) = mpsc::channel::<bool>(rooms);
    let (end_tx, end_rx) = watch::channel(false);
    let mut conductors = Vec::with_capacity(rooms);
    for r in 0..rooms {
        let members = size.min(n - r * size);
        let (ctx, done_tx, mut end_rx) = (ctx.clone(), done_tx.clone(), end_rx.clone());
        conductors.push(tokio::spawn(async move {
            let meeting = Meeting::spawn(&ctx, format!("load-{run}-{r}"), members, r * size);
            let complete = meeting.workload(&ctx).await;
            let _ = done_tx.send(complete).await;
            let _ = end_rx.wait_for(|end| *end).await;
            meeting.end(Cmd::Close).await;
        }));
    }
    drop(done_tx);
    let mut complete = 0;
    for _ in 0..rooms {
        if done_rx.recv().await == Some(true) {
            complete += 1;
        }
    }
    let workload_secs = epoch.elapsed().as_secs_f64();
    let cpu_workload = proc::cpu_pct(
        idle.cpu_ticks,
        super::reading(&args.pids).cpu_ticks,
        workload_secs,
    );
    println!(
        "workload done in {workload_secs:.1} s: {complete} of {rooms} rooms complete, {} joined",
        stats.connected()
    );
    // Let the last answers and candidates land before calling the memory "connected".
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected = super::reading(&args.pids);
    let joined_now = stats.connected();
    let hold_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let held = super::reading(&args.pids);
    let cpu_hold = proc::cpu_pct(
        connected.cpu_ticks,
        held.cpu_ticks,
        hold_start.elapsed().as_secs_f64(),
    );
    let joined_after_hold = stats.connected();
    let mut per_process = Vec::new();
    for pid in &args.pids {
        per_process.push((*pid, proc::read(*pid).unwrap_or_default()));
    }
    let _ = end_tx.send(true);
    for c in conductors {
        let _ = c.await;
    }
    let samples = sampler.snapshot();
    drop(sampler);

    proc::print_processes("after hold", &args.pids);
    stats.errors.print_table("errors by kind");
    stats.hint_rates();
    let per = |kib: i64| format!("{:.1}", kib as f64 / n.max(1) as f64);
    let mut s = Summary::new("scale");
    s.kv("proto", args.proto.name())
        .kv("participants", n)
        .kv("room_size", size)
        .kv("rooms", rooms)
        .kv("rooms_complete", complete)
        .kv("churn", if args.churn { "on" } else { "off" })
        .kv("joined_at_hold_start", joined_now)
        .kv("joined_at_hold_end", joined_after_hold)
        .kv("workload_secs", format!("{workload_secs:.1}"))
        .kv("hold_secs", args.hold)
        .kv("joins", stats.get(&stats.joins))
        .kv("rejoins", stats.get(&stats.rejoins))
        .kv("resumes", stats.get(&stats.resumes))
        .kv("connect_retries", stats.get(&stats.connect_retries))
        .latency("join", &stats.join_us)
        .latency("relay", &stats.relay_us)
        .kv("signals_sent", stats.get(&stats.sent))
        .kv("signals_received", stats.get(&stats.received))
        .kv("rss_idle_kib", idle.rss_kib)
        .kv("rss_connected_kib", connected.rss_kib)
        .kv("hwm_connected_kib", connected.hwm_kib)
        .kv("rss_held_kib", held.rss_kib)
        .kv("hwm_held_kib", held.hwm_kib);
    if args.pids.len() > 1 {
        for (pid, r) in &per_process {
            let name = proc::comm(*pid);
            s.kv(&format!("rss_held_kib.{name}_{pid}"), r.rss_kib)
                .kv(&format!("hwm_held_kib.{name}_{pid}"), r.hwm_kib);
        }
    }
    s.kv(
        "kib_per_participant_over_idle",
        per(connected.rss_kib as i64 - idle.rss_kib as i64),
    )
    .kv("kib_per_participant_total", per(connected.rss_kib as i64))
    .kv("server_cpu_workload_pct", format!("{cpu_workload:.1}"))
    .kv("server_cpu_hold_pct", format!("{cpu_hold:.1}"))
    .kv("errors", stats.errors.total());
    s.print();
    super::write_outputs(args, &format!("{n} participants"), &samples);
    0
}
