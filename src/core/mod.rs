//! The room core: rooms and seats, host rules, chat, removals, passwords, rate buckets.
//!
//! Architecture invariant: nothing here touches a socket, a clock or the network, and nothing
//! here imports tokio, `std::net` sockets, or any module outside `core` but `ops::limits` (the
//! numbers) and `signaling::protocol`'s wire values that rooms hold (names, ids, chat lines).
//! Callers pass `now` and get back the notices to send; every rule is a unit test. A test in
//! `lib.rs` (`the_core_imports_nothing_above_it`) keeps it so.

pub mod addr;
pub mod bucket;
pub mod ids;
pub mod password;
pub mod rooms;
pub mod snapshot;
