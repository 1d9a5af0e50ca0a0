//! The room core: rooms and seats, host rules, chat, removals, passwords, rate buckets, and the
//! plain values the layers above share (the budget's numbers, TURN credentials, snapshots).
//!
//! Architecture invariant: nothing here touches a socket, a clock, the file system or the
//! network, and nothing here imports tokio or any module of the crate but `util`. Callers pass
//! `now` and get back the notices to send; every rule is a unit test. The tests of `lib.rs`'s
//! `layering` keep it so.

pub mod addr;
pub mod bucket;
pub mod credentials;
pub mod ids;
pub mod limits;
pub mod password;
pub mod rooms;
pub mod snapshot;
