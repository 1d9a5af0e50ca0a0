//! The wall clock, for what is written down or sent (Unix time); rules use `Instant`s passed in.
//! And compact stamps of the monotonic clock, for timing what waits in a queue.

use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The instant every [`stamp`] counts from: the first time anything asks (the server asks when
/// it starts serving).
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Microseconds from the process epoch to `at`, in 32 bits: small enough to sit beside a queued
/// frame. It wraps every 71 minutes, so only differences of recent stamps mean anything (see
/// [`micros_since`]); 0 for an instant before the epoch.
pub fn stamp(at: Instant) -> u32 {
    at.saturating_duration_since(*EPOCH).as_micros() as u32
}

/// Microseconds from `stamp` to `now`, for a stamp taken less than 71 minutes before.
pub fn micros_since(stamp: u32, now: Instant) -> u32 {
    self::stamp(now).wrapping_sub(stamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_measure_short_spans() {
        let _ = stamp(Instant::now()); // the epoch, before `at`
        let at = Instant::now();
        let start = stamp(at);
        assert_eq!(micros_since(start, at + Duration::from_millis(3)), 3000);
        assert_eq!(micros_since(start, at), 0);
    }
}
