//! The `--rate` schedule of the throughput scenario, kept by one thread instead of 600 tokio
//! timers.
//!
//! Signal k of the timed phase is due at `start + k / rate` and is sender `k mod n`'s: sender i's
//! j-th signal is due at `start + (j·n + i) / rate`, an even spacing of the total rate with the
//! senders' phases staggered. Tokio's timers have a 1 ms resolution, so 600 senders sleeping on
//! their own deadlines woke in bursts of ~20 signals per millisecond tick; this thread sleeps
//! (`thread::sleep`, i.e. nanosleep: tens of µs precise) to the next due signal, but never less
//! than [`TICK`], and grants every signal due by then to its sender (a counter and a `Notify`),
//! which sends it at once.
//!
//! Why not spin for the last sub-millisecond: the generator shares 2 cores with the server under
//! test, and a spinning pacer takes a whole core from it, worse for the server's tail than the
//! 200 µs grain. At 20,000 msg/s a tick releases about 4 signals (was ~20 per ms): ~5,000 wakes a
//! second, a few % of one core.
//!
//! The same thread also probes the generator's own scheduling, see [`Pacer::wake_probe`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::stats::Latencies;

/// The shortest sleep of the pacer thread.
const TICK: Duration = Duration::from_micros(200);
/// How often the wake probe is poked.
const PROBE_EVERY: Duration = Duration::from_millis(5);

pub struct Pacer {
    rate: f64,
    senders: usize,
    /// Microseconds from the run's epoch to the schedule's start (set by [`Pacer::start`]).
    start_us: AtomicU64,
    /// Per sender: its signals due so far.
    granted: Vec<AtomicU64>,
    wake: Vec<Notify>,
    stop: AtomicBool,
    probe: Notify,
    /// When the probe was last poked, µs from the epoch.
    probe_at: AtomicU64,
    epoch: Instant,
}

impl Pacer {
    pub fn new(rate: f64, senders: usize, epoch: Instant) -> Arc<Pacer> {
        Arc::new(Pacer {
            rate,
            senders,
            start_us: AtomicU64::new(0),
            granted: (0..senders).map(|_| AtomicU64::new(0)).collect(),
            wake: (0..senders).map(|_| Notify::new()).collect(),
            stop: AtomicBool::new(false),
            probe: Notify::new(),
            probe_at: AtomicU64::new(0),
            epoch,
        })
    }

    /// Starts the schedule now, on its own thread, until [`Pacer::stop`].
    pub fn start(self: &Arc<Pacer>) -> JoinHandle<()> {
        let start = Instant::now();
        self.start_us.store(self.micros(start), Ordering::Release);
        let pacer = self.clone();
        std::thread::Builder::new()
            .name("pacer".into())
            .spawn(move || pacer.run(start))
            .expect("a thread")
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.probe.notify_one();
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_micros() as u64
    }

    fn run(&self, start: Instant) {
        let mut k = 0u64; // the next signal to grant
        let mut next_probe = start;
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            let due = (now.duration_since(start).as_secs_f64() * self.rate) as u64 + 1;
            for signal in k..due {
                let i = (signal % self.senders as u64) as usize;
                self.granted[i].fetch_add(1, Ordering::AcqRel);
                self.wake[i].notify_one();
            }
            k = k.max(due);
            if now >= next_probe {
                self.probe_at.store(self.micros(now), Ordering::Release);
                self.probe.notify_one();
                next_probe = now + PROBE_EVERY;
            }
            let next = start + Duration::from_secs_f64(k as f64 / self.rate);
            std::thread::sleep(next.saturating_duration_since(now).max(TICK));
        }
    }

    /// Sender `i`'s signals due so far.
    pub fn granted(&self, i: usize) -> u64 {
        self.granted[i].load(Ordering::Acquire)
    }

    /// Wakes when sender `i` is granted another signal.
    pub fn notified(&self, i: usize) -> tokio::sync::futures::Notified<'_> {
        self.wake[i].notified()
    }

    /// When sender `i`'s `j`-th signal was due, in µs from the epoch.
    pub fn due_us(&self, i: usize, j: u64) -> u64 {
        let k = j * self.senders as u64 + i as u64;
        self.start_us.load(Ordering::Acquire) + (k as f64 * 1e6 / self.rate) as u64
    }

    /// Sender `i`'s signal that is due now or next: where a sender far behind skips to.
    pub fn current(&self, i: usize) -> u64 {
        self.granted(i).saturating_sub(1)
    }

    /// The receive side's share of the generator's lag, as far as it can be told honestly: a
    /// task woken every 5 ms by the pacer thread records how long it took to run after the
    /// poke. A receiving participant is woken by its socket into the same run queue, on the same
    /// two workers, so this is how long a frame that has arrived waits, once its socket is
    /// ready, for its reader to be scheduled. It does not measure the time a frame sits in the
    /// kernel before the runtime's poll sees it, nor the reader's own work (parsing) on the
    /// frames ahead of it in its buffer. (A probe that has not run for 5 ms counts from the
    /// latest poke, so a stall longer than that is under-counted.) Runs until [`Pacer::stop`].
    pub async fn wake_probe(self: Arc<Pacer>, delays: Arc<Latencies>) {
        let mut batch = Vec::new();
        while !self.stop.load(Ordering::Acquire) {
            self.probe.notified().await;
            let poked = self.probe_at.load(Ordering::Acquire);
            batch.push(self.micros(Instant::now()).saturating_sub(poked));
        }
        batch.pop(); // the wake that stopped it
        delays.extend(&mut batch);
    }
}
