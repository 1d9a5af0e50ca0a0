//! What the operator sees and sets: flags and `VIDEOMEET_*` variables ([`config`]), the memory
//! budget of `memlimit.toml` ([`limits`]), the `/metrics` counters ([`metrics`]) and the service
//! unit ([`systemd`]).
//!
//! Invariants:
//! - ops never decides a room rule or admits anything: it turns what the operator wrote into
//!   [`config::Config`] and what the server counted into text. It checks that the numbers are
//!   well-formed and fit together; what they mean for a room, a socket or the relay is decided
//!   where those live.
//! - Each flag, budget key and metric is declared once, in its table ([`config::FLAGS`], the
//!   `limits_table!` list, the `metrics_table!` list). Parsing, `--help`, the systemd unit, the
//!   `/metrics` text and the README's options table are derived from them; tests check that the
//!   README agrees (`UPDATE_README=1 cargo test --lib readme` rewrites its generated part).
//! - `limits.rs` depends on nothing but `std`: `build.rs` includes it by `#[path]` to check
//!   `memlimit.toml` at build time.

pub mod config;
pub mod limits;
pub mod metrics;
pub mod systemd;

#[cfg(test)]
mod readme;
