//! The server's memory and CPU, read from /proc the way `ps` and `top` do, for one or several
//! processes (the Node reference is node plus redis-server: each is reported, and their sum).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::stats::Stats;

/// One reading of one process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// utime + stime in clock ticks.
    pub cpu_ticks: u64,
}

/// VmRSS, VmHWM and CPU ticks of a process; None once it is gone.
pub fn read(pid: u32) -> Option<Reading> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some(Reading {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
        cpu_ticks: cpu_ticks(pid)?,
    })
}

/// utime + stime from /proc/PID/stat (fields 14 and 15). The command name (field 2) may hold
/// spaces and parentheses, so the fields are counted from its last `)`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Whether the process exists and is not a zombie (a crashed server the shell has not reaped
/// yet is a zombie, and must count as a crash).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next().map(str::to_string))
        })
        .is_some_and(|state| state != "Z" && state != "X")
}

pub fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// Readings of all watched processes summed (each process's VmHWM is its own peak, so the
/// summed HWM is an upper bound of the peak of the sum).
pub fn read_sum(pids: &[u32]) -> Option<Reading> {
    let mut sum = Reading::default();
    let mut any = false;
    for pid in pids {
        if let Some(r) = read(*pid) {
            any = true;
            sum.rss_kib += r.rss_kib;
            sum.hwm_kib += r.hwm_kib;
            sum.cpu_ticks += r.cpu_ticks;
        }
    }
    any.then_some(sum)
}

/// CPU use between two tick counts as % of one core (200 % = both cores of a 2-core machine).
pub fn cpu_pct(ticks_before: u64, ticks_after: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return 0.0;
    }
    ticks_after.saturating_sub(ticks_before) as f64 / clock_ticks_per_sec() / secs * 100.0
}

/// Raises the soft open-file limit to the hard one: 10,000 participants are 10,000 sockets here.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: plain libc calls on a stack struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            return lim.rlim_cur;
        }
        0
    }
}

/// One sample of all watched processes.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Seconds since the scenario began.
    pub t: f64,
    /// Participants joined at that moment.
    pub connected: u64,
    /// Per process, in the order of `--pid`: (rss KiB, hwm KiB, CPU % of one core since the
    /// previous sample).
    pub each: Vec<(u64, u64, f64)>,
}

impl Sample {
    pub fn rss(&self) -> u64 {
        self.each.iter().map(|e| e.0).sum()
    }
    pub fn hwm(&self) -> u64 {
        self.each.iter().map(|e| e.1).sum()
    }
    pub fn cpu(&self) -> f64 {
        self.each.iter().map(|e| e.2).sum()
    }
}

/// Samples the processes every `every` in a background task until dropped.
pub struct Sampler {
    pub samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(pids: Vec<u32>, every: Duration, epoch: Instant, stats: Arc<Stats>) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let out = samples.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last: Vec<Option<(Instant, u64)>> = vec![None; pids.len()];
            loop {
                tick.tick().await;
                let now = Instant::now();
                let mut each = Vec::with_capacity(pids.len());
                for (i, pid) in pids.iter().enumerate() {
                    let r = read(*pid).unwrap_or_default();
                    let cpu = match last[i] {
                        Some((at, ticks)) => {
                            cpu_pct(ticks, r.cpu_ticks, now.duration_since(at).as_secs_f64())
                        }
                        None => 0.0,
                    };
                    last[i] = Some((now, r.cpu_ticks));
                    each.push((r.rss_kib, r.hwm_kib, cpu));
                }
                out.lock().expect("not poisoned").push(Sample {
                    t: now.duration_since(epoch).as_secs_f64(),
                    connected: stats.connected(),
                    each,
                });
            }
        });
        Sampler { samples, task }
    }

    pub fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().expect("not poisoned").clone()
    }

    /// The highest summed VmHWM seen.
    pub fn peak_hwm(&self) -> u64 {
        self.snapshot().iter().map(Sample::hwm).max().unwrap_or(0)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Prints one line per watched process and one for the sum when there are several.
pub fn print_processes(label: &str, pids: &[u32]) {
    for pid in pids {
        match read(*pid) {
            Some(r) => println!(
                "{label}: pid {pid} ({}) VmRSS {} KiB, VmHWM {} KiB",
                comm(*pid),
                r.rss_kib,
                r.hwm_kib
            ),
            None => println!("{label}: pid {pid} is gone"),
        }
    }
}

/// The process name, to label the per-process lines (videomeet, node, redis-server).
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let r = read(me).expect("own /proc readable");
        assert!(r.rss_kib > 0 && r.hwm_kib >= r.rss_kib);
        assert!(alive(me));
        assert!(!alive(u32::MAX - 1));
        assert!(clock_ticks_per_sec() > 0.0);
        assert!((cpu_pct(0, 100, 1.0) - 100.0 * 100.0 / clock_ticks_per_sec()).abs() < 1e-9);
    }
}
