//! Small things every layer uses, written once: hex digits and the wall clock.
//!
//! Architecture invariant: `util` imports nothing of this crate.

pub mod hex;
pub mod time;
