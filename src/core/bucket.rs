//! The token bucket every rate limit uses: a burst, then a steady refill. Plain data with the
//! clock passed in, so each rule built on it is a unit test.

use std::time::Instant;

/// A bucket's size and refill: `burst` at once, refilled at `per_sec`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub burst: f64,
    pub per_sec: f64,
}

impl Rate {
    /// `burst` at once, then `per_min` a minute.
    pub fn per_min(burst: u64, per_min: u64) -> Rate {
        Rate {
            burst: burst as f64,
            per_sec: per_min as f64 / 60.0,
        }
    }

    /// One second's worth of bytes at `kbit_per_sec`, refilled continuously.
    pub fn kbit_per_sec(kbit: u64) -> Rate {
        let bytes = (kbit * 125) as f64;
        Rate {
            burst: bytes,
            per_sec: bytes,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + secs * rate.per_sec).min(rate.burst);
        self.at = now;
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, rate: Rate, now: Instant) -> bool {
        self.take_n(1.0, rate, now)
    }

    /// Takes `n` tokens if there are as many; otherwise takes nothing.
    pub fn take_n(&mut self, n: f64, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    pub fn has(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.tokens >= 1.0
    }

    pub fn is_full(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.tokens >= rate.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let rate = Rate {
            burst: 3.0,
            per_sec: 2.0,
        };
        let t = Instant::now();
        let mut b = Bucket::full(rate, t);
        assert!(b.take(rate, t) && b.take(rate, t) && b.take(rate, t));
        assert!(!b.take(rate, t));
        assert!(b.take(rate, t + Duration::from_millis(500)));
        assert!(!b.take(rate, t + Duration::from_millis(500)));
        assert!(
            b.is_full(rate, t + Duration::from_secs(10)),
            "never past the burst"
        );
    }

    #[test]
    fn bytes_pass_at_the_rate_and_a_refused_packet_takes_nothing() {
        let rate = Rate::kbit_per_sec(8); // 1,000 bytes a second
        let t = Instant::now();
        let mut b = Bucket::full(rate, t);
        assert!(b.take_n(600.0, rate, t));
        assert!(!b.take_n(600.0, rate, t), "400 left");
        assert!(b.take_n(400.0, rate, t), "the refusal took nothing");
        assert!(b.take_n(100.0, rate, t + Duration::from_millis(100)));
    }
}
