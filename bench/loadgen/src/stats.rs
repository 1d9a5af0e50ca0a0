//! What a run counts: latencies (kept whole, to report exact percentiles rather than bucket
//! edges), message counters, and failures by kind, plus the stable `key: value` summary block
//! every scenario ends with.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// A set of durations in microseconds.
#[derive(Default)]
pub struct Latencies(Mutex<Vec<u64>>);

impl Latencies {
    pub fn push(&self, us: u64) {
        self.0.lock().expect("not poisoned").push(us);
    }

    /// Appends many at once: the throughput scenario batches per participant so that tens of
    /// thousands of deliveries a second do not all contend for one lock.
    pub fn extend(&self, batch: &mut Vec<u64>) {
        self.0.lock().expect("not poisoned").append(batch);
    }

    pub fn sorted(&self) -> Vec<u64> {
        let mut v = self.0.lock().expect("not poisoned").clone();
        v.sort_unstable();
        v
    }

    /// (n, p50, p99, max) in milliseconds.
    pub fn summary(&self) -> (usize, f64, f64, f64) {
        let v = self.sorted();
        let ms = |us: u64| us as f64 / 1000.0;
        (
            v.len(),
            ms(percentile(&v, 0.50)),
            ms(percentile(&v, 0.99)),
            ms(v.last().copied().unwrap_or(0)),
        )
    }
}

/// The value at fraction `p` of a sorted slice (nearest rank).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn median_f64(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Least-squares slope of y over x.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

/// Failures by kind. Server `error` messages are `error:<code>`; connection failures are
/// `connect`, `handshake:<why>`, `closed_early:<close code or none>`; the workload's own checks
/// are `resume_mismatch` and `timeout:<phase>`. One example message is kept per kind, so a
/// surprise can be read without a debugger.
#[derive(Default)]
pub struct Errors(Mutex<BTreeMap<String, (u64, String)>>);

impl Errors {
    pub fn add(&self, kind: &str, example: impl FnOnce() -> String) {
        let mut map = self.0.lock().expect("not poisoned");
        match map.get_mut(kind) {
            Some(entry) => entry.0 += 1,
            None => {
                map.insert(kind.to_string(), (1, example()));
            }
        }
    }

    pub fn count(&self, kind: &str) -> u64 {
        self.0
            .lock()
            .expect("not poisoned")
            .get(kind)
            .map_or(0, |e| e.0)
    }

    pub fn total(&self) -> u64 {
        self.0
            .lock()
            .expect("not poisoned")
            .values()
            .map(|e| e.0)
            .sum()
    }

    /// The table printed at the end of every scenario.
    pub fn print_table(&self, title: &str) {
        let map = self.0.lock().expect("not poisoned");
        println!("{title}:");
        if map.is_empty() {
            println!("  (none)");
            return;
        }
        println!("  {:<28} {:>9}  example", "kind", "count");
        for (kind, (n, example)) in map.iter() {
            let mut ex = example.clone();
            if ex.len() > 80 {
                let mut cut = 80;
                while !ex.is_char_boundary(cut) {
                    cut -= 1;
                }
                ex.truncate(cut);
            }
            println!("  {kind:<28} {n:>9}  {ex}");
        }
    }
}

/// Everything one population of participants counts. The flood keeps two (honest and hostile)
/// so that the hostile sockets' refusals never hide an honest failure.
#[derive(Default)]
pub struct Stats {
    pub join_us: Latencies,
    pub relay_us: Latencies,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Sockets that are joined right now (the x axis of the RSS-per-participant plot).
    pub connected: AtomicI64,
    pub joins: AtomicU64,
    pub connect_retries: AtomicU64,
    pub resumes: AtomicU64,
    pub rejoins: AtomicU64,
    pub chats: AtomicU64,
    pub updates: AtomicU64,
    pub errors: Errors,
}

impl Stats {
    pub fn connected(&self) -> u64 {
        self.connected.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn error(&self, kind: &str, example: impl FnOnce() -> String) {
        self.errors.add(kind, example);
    }

    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Prints the slow_down hint the throughput scenario needs most.
    pub fn hint_rates(&self) {
        if self.errors.count("error:slow_down") > 0 {
            println!(
                "hint: the server dropped messages past its per-socket rate (slow_down). Start it with\n  \
                 --set rates.socket_messages_per_sec=1000000 --set rates.socket_messages_burst=1000000"
            );
        }
    }
}

/// The block every scenario ends with: one `key: value` per figure, in a fixed order, between
/// two marker lines, so a run can be grepped or pasted into docs/BENCHMARKS.md as it is.
pub struct Summary {
    lines: Vec<(String, String)>,
}

impl Summary {
    pub fn new(scenario: &str) -> Summary {
        Summary {
            lines: vec![("scenario".into(), scenario.into())],
        }
    }

    pub fn kv(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Summary {
        self.lines.push((key.into(), value.to_string()));
        self
    }

    /// `PREFIX_n`, `PREFIX_p50_ms`, `PREFIX_p99_ms`, `PREFIX_max_ms`.
    pub fn latency(&mut self, prefix: &str, l: &Latencies) -> &mut Summary {
        let (n, p50, p99, max) = l.summary();
        self.kv(&format!("{prefix}_n"), n)
            .kv(&format!("{prefix}_p50_ms"), format!("{p50:.2}"))
            .kv(&format!("{prefix}_p99_ms"), format!("{p99:.2}"))
            .kv(&format!("{prefix}_max_ms"), format!("{max:.2}"))
    }

    pub fn print(&self) {
        println!("--- summary ---");
        for (k, v) in &self.lines {
            println!("{k}: {v}");
        }
        println!("--- end ---");
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.2}", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_slope() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 51);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 1.0)).collect();
        assert!((slope(&pts) - 3.0).abs() < 1e-9);
        assert_eq!(median_f64(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_f64(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn errors_count_by_kind() {
        let e = Errors::default();
        e.add("error:room_full", || "first".into());
        e.add("error:room_full", || "second".into());
        e.add("connect", || "refused".into());
        assert_eq!(e.count("error:room_full"), 2);
        assert_eq!(e.total(), 3);
    }
}
