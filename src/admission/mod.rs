//! What may be admitted: the budget's arenas and the counting allocator (`budget`), the
//! per-address limits (`guard`), and the oldest-first queue of HTTP connections (`evict`).
//!
//! Architecture invariant: everything a client can make the server hold is taken from an arena
//! here first, and given back by a guard value's `Drop`, so an aborted task cannot leak it.

pub mod budget;
pub mod evict;
pub mod guard;
