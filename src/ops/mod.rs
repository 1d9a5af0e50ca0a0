//! What the operator sees and sets: flags and `VIDEOMEET_*` variables ([`config`]), the memory
//! budget of `memlimit.toml` ([`limits`]), the `/metrics` counters ([`metrics`]) and the service
//! unit ([`systemd`]).
//!
//! Invariants:
//! - ops never decides a room rule or admits anything: it turns what the operator wrote into
//!   [`config::Config`] and what the server counted into text. Rooms, sessions and the relay
//!   read the numbers; they are not re-checked here.
//! - `limits.rs` depends on nothing but `std`: `build.rs` includes it by `#[path]` to check
//!   `memlimit.toml` at build time.

pub mod config;
pub mod limits;
pub mod metrics;
pub mod systemd;

#[cfg(test)]
mod readme;
