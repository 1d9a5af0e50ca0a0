//! What the operator sees and sets, and what the process keeps on disk: flags and `VIDEOMEET_*`
//! variables ([`config`]), the `/metrics` counters ([`metrics`]), the service unit
//! ([`systemd`]), the certificate ([`tls`]), the names this server answers to ([`hosts`],
//! [`machine`]), the state directory and the room store's file ([`state_dir`], [`store`]), and
//! the process settings made at start ([`process`]). The budget's numbers are
//! `core::limits`: every layer reads them, so they live at the bottom.
//!
//! Invariants:
//! - ops never decides a room rule or admits anything: it turns what the operator wrote into
//!   [`config::Config`] and what the server counted into text. It checks that the numbers are
//!   well-formed and fit together; what they mean for a room, a socket or the relay is decided
//!   where those live.
//! - Each flag, budget key and metric is declared once, in its table ([`config::FLAGS`],
//!   `core::limits`'s `limits_table!` list, the `metrics_table!` list). Parsing, `--help`, the systemd unit, the
//!   `/metrics` text and the README's options table are derived from them; tests check that the
//!   README agrees (`UPDATE_README=1 cargo test --lib readme` rewrites its generated part).
//! - Nothing here imports `turn`, `signaling` or `web`: the tasks that use the store on the
//!   live room map are `signaling::persist`'s.

pub mod config;
pub mod hosts;
pub mod machine;
pub mod metrics;
pub mod process;
pub mod state_dir;
pub mod store;
pub mod systemd;
pub mod tls;

#[cfg(test)]
mod readme;
