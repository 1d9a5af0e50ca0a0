//! `soak`: a steady rate of new meetings, each in a fresh room with the full workload (churn
//! and resume included), staying `--meeting-secs` and then leaving, for `--secs`. With the
//! server's room TTL and sweep shortened, generations of rooms are created, expired and swept
//! all through the run; memory that is not given back shows as RSS creeping upwards.
//!
//! The verdict compares two levels and one trend:
//! - warm: the median RSS over a window of 10 % of the run, starting after the warm-up. The
//!   warm-up is 60 s or 10 % of the run, whichever is later (allocator pools and the runtime's
//!   threads fill during the first minute), but at most a quarter of the run so that short
//!   trial runs still have a window: 600 s runs use 60..120 s, 60 s runs 15..21 s.
//! - final: RSS after the last meetings left and their rooms expired (TTL + sweep + 2 s).
//! - the least-squares slope of RSS over the second half of the launching period.
//!
//! PASS when final <= 1.05 x warm (final is below warm as a rule: warm has meetings live,
//! final has none, so only growth counts against it) and the second half's slope is not
//! upward beyond noise: slope x half-duration < 2 % of warm.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::proc::Sampler;
use crate::stats::{median_f64, slope, Stats, Summary};
use crate::workload::{Cmd, Meeting};

/// Source addresses are reused after this many participants (well after their sockets closed).
const SOURCES: usize = 60_000;

pub async fn run(args: &Args) -> i32 {
    let secs = args.secs_or(600).max(1) as f64;
    let size = args.room_size;
    let run = super::run_tag();
    let stats = Arc::new(Stats::default());
    let epoch = Instant::now();
    let sampler = Sampler::start(
        args.pids.clone(),
        args.sample_every(1000),
        epoch,
        stats.clone(),
    );
    let ctx = super::ctx(args, stats.clone(), 1, run, epoch);
    let stay = Duration::from_secs_f64(args.meeting_secs);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();

    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.meetings_per_sec));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut launched = 0usize;
    let mut tasks = Vec::new();
    loop {
        tick.tick().await;
        if epoch.elapsed().as_secs_f64() >= secs {
            break;
        }
        let (ctx, done_tx) = (ctx.clone(), done_tx.clone());
        let m = launched;
        tasks.push(tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let meeting =
                Meeting::spawn(&ctx, format!("soak-{run}-{m}"), size, (m * size) % SOURCES);
            let complete = meeting.workload(&ctx).await;
            tokio::time::sleep_until(started + stay).await;
            meeting.end(Cmd::Leave).await;
            let _ = done_tx.send(complete);
        }));
        launched += 1;
        if launched.is_multiple_of(100) {
            println!(
                "{:>6.0} s: {launched} meetings started, {} participants joined now",
                epoch.elapsed().as_secs_f64(),
                stats.connected()
            );
        }
    }
    drop(done_tx);
    let launch_end = epoch.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    let mut complete = 0;
    while let Ok(ok) = done_rx.try_recv() {
        complete += usize::from(ok);
    }
    let tail = args.room_ttl + args.sweep + 2;
    println!(
        "{launched} meetings started in {launch_end:.0} s, all left at {:.0} s; waiting {tail} s \
         for their rooms to expire (TTL {} + sweep {} + 2)",
        epoch.elapsed().as_secs_f64(),
        args.room_ttl,
        args.sweep
    );
    tokio::time::sleep(Duration::from_secs(tail)).await;
    let final_reading = super::reading(&args.pids);
    let samples = sampler.snapshot();
    drop(sampler);
    let metrics = if args.proto == crate::proto::Proto::VideoMeet {
        crate::metrics::fetch(args.addr).await
    } else {
        None
    };

    let series: Vec<(f64, f64)> = samples.iter().map(|s| (s.t, s.rss() as f64)).collect();
    let v = verdict(&series, secs, final_reading.rss_kib as f64);
    let (warm_up, warm_end, warm, ratio) = (v.warm_up, v.warm_end, v.warm, v.ratio);
    let (slope_kib_min, growth, reasons) = (v.slope_kib_min, v.growth, v.reasons);
    let pass = reasons.is_empty();

    crate::proc::print_processes("final", &args.pids);
    if let Some(m) = &metrics {
        crate::metrics::print(m);
    }
    stats.errors.print_table("errors by kind");
    let mut s = Summary::new("soak");
    s.kv("proto", args.proto.name())
        .kv("secs", format!("{secs:.0}"))
        .kv("meetings_per_sec", args.meetings_per_sec)
        .kv("meeting_secs", args.meeting_secs)
        .kv("room_size", size)
        .kv("meetings", launched)
        .kv("meetings_complete", complete)
        .kv("joins", stats.get(&stats.joins))
        .kv("rejoins", stats.get(&stats.rejoins))
        .kv("resumes", stats.get(&stats.resumes))
        .kv("connect_retries", stats.get(&stats.connect_retries))
        .latency("join", &stats.join_us)
        .latency("relay", &stats.relay_us)
        .kv("signals_sent", stats.get(&stats.sent))
        .kv("signals_received", stats.get(&stats.received))
        .kv("samples", samples.len())
        .kv("warm_window_secs", format!("{warm_up:.0}-{warm_end:.0}"))
        .kv("rss_warm_kib", format!("{warm:.0}"))
        .kv("rss_final_kib", final_reading.rss_kib)
        .kv("hwm_final_kib", final_reading.hwm_kib)
        .kv("final_over_warm", format!("{ratio:.3}"))
        .kv(
            "slope_second_half_kib_per_min",
            format!("{slope_kib_min:.1}"),
        )
        .kv("growth_second_half_kib", format!("{growth:.0}"));
    if let Some(m) = &metrics {
        for (key, name) in [
            ("server_rooms", "videomeet_rooms"),
            ("server_participants", "videomeet_participants"),
            ("server_open_sockets", "videomeet_open_sockets"),
            ("server_heap_bytes", "videomeet_heap_bytes"),
            ("server_heap_peak_bytes", "videomeet_heap_peak_bytes"),
        ] {
            if let Some(v) = m.get(name) {
                s.kv(key, v);
            }
        }
    }
    s.kv("errors", stats.errors.total())
        .kv("verdict", if pass { "PASS" } else { "FAIL" });
    s.print();
    super::write_outputs(
        args,
        &format!("soak, {} meetings/s", args.meetings_per_sec),
        &samples,
    );
    if pass {
        println!("soak: PASS");
        0
    } else {
        println!("soak: FAIL ({})", reasons.join("; "));
        1
    }
}

/// The soak's figures and its reasons to fail (none: PASS).
struct Verdict {
    warm_up: f64,
    warm_end: f64,
    warm: f64,
    ratio: f64,
    slope_kib_min: f64,
    growth: f64,
    reasons: Vec<String>,
}

/// `series` is (seconds, RSS KiB); `secs` the launching period; `final_kib` the RSS once the
/// last rooms expired. See the module comment for the rules.
fn verdict(series: &[(f64, f64)], secs: f64, final_kib: f64) -> Verdict {
    let warm_up = (60f64.max(0.1 * secs)).min(0.25 * secs);
    let warm_end = warm_up + 0.1 * secs;
    let in_window: Vec<f64> = series
        .iter()
        .filter(|(t, _)| *t >= warm_up && *t < warm_end)
        .map(|(_, rss)| *rss)
        .collect();
    let warm = median_f64(&in_window);
    let half: Vec<(f64, f64)> = series
        .iter()
        .filter(|(t, _)| *t >= secs / 2.0 && *t <= secs)
        .map(|(t, rss)| (t / 60.0, *rss))
        .collect();
    let slope_kib_min = slope(&half);
    let half_minutes = secs / 2.0 / 60.0;
    let growth = slope_kib_min * half_minutes;
    let ratio = if warm > 0.0 { final_kib / warm } else { 0.0 };
    let mut reasons = Vec::new();
    if in_window.is_empty() {
        reasons.push("no samples in the warm window".to_string());
    }
    if ratio > 1.05 {
        reasons.push(format!(
            "final RSS is {:.1} % above warm (limit 5 %)",
            (ratio - 1.0) * 100.0
        ));
    }
    if growth >= 0.02 * warm {
        reasons.push(format!(
            "second-half slope {slope_kib_min:.1} KiB/min x {half_minutes:.1} min = {growth:.0} KiB, \
             over 2 % of warm ({:.0} KiB)",
            0.02 * warm
        ));
    }
    Verdict {
        warm_up,
        warm_end,
        warm,
        ratio,
        slope_kib_min,
        growth,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::verdict;

    fn series(secs: u32, rss: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..=secs).map(|t| (t as f64, rss(t as f64))).collect()
    }

    #[test]
    fn flat_memory_passes() {
        let v = verdict(&series(600, |_| 10_000.0), 600.0, 9_000.0);
        assert_eq!((v.warm_up, v.warm_end, v.warm), (60.0, 120.0, 10_000.0));
        assert!(v.reasons.is_empty(), "{:?}", v.reasons);
        // Short trial runs still get a window.
        let v = verdict(&series(60, |_| 10_000.0), 60.0, 10_000.0);
        assert_eq!((v.warm_up, v.warm_end), (15.0, 21.0));
        assert!(v.reasons.is_empty());
    }

    #[test]
    fn a_leak_fails_on_both_counts() {
        // 100 KiB a second: 30,000 KiB over the second half of a 600 s run.
        let v = verdict(&series(600, |t| 10_000.0 + t * 100.0), 600.0, 70_000.0);
        assert!((v.slope_kib_min - 6_000.0).abs() < 1e-6);
        assert_eq!(v.reasons.len(), 2, "{:?}", v.reasons);
        // Only the final level grew (memory kept after the rooms went).
        let v = verdict(&series(600, |_| 10_000.0), 600.0, 11_000.0);
        assert_eq!(v.reasons.len(), 1);
        assert!(v.reasons[0].contains("above warm"));
    }
}
