//! Small things every layer uses, written once: hex digits, the wall clock, network prefixes.
//!
//! Architecture invariant: `util` imports nothing of this crate.

pub mod cidr;
pub mod hex;
pub mod time;
