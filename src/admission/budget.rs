//! The memory budget at run time: a counting allocator over mimalloc, and the arenas that
//! admission checks before anything grows.
//!
//! Architecture invariant: nothing that a client can make the server hold (a socket, a room, a
//! queued or partly received message) is taken without first acquiring its arena. A refused
//! acquisition becomes `server_busy` or HTTP 503, never an allocation.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::core::limits::Limits;

/// mimalloc, with every byte handed out and returned counted, so `/metrics` and admission see the
/// real heap in use rather than an estimate.
pub struct CountingAlloc;

/// The allocator under the count. A profiling build (`--features system-alloc`) uses the C
/// library's malloc instead, so heaptrack and valgrind, which hook malloc, see every allocation
/// with its call stack (docs/BENCHMARKS.md, "Where the memory goes").
#[cfg(not(feature = "system-alloc"))]
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(feature = "system-alloc")]
static INNER: std::alloc::System = std::alloc::System;

static HEAP_IN_USE: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the inner allocator (mimalloc, or malloc with
        // `system-alloc`), which upholds GlobalAlloc's contract.
        let ptr = unsafe { INNER.alloc(layout) };
        if !ptr.is_null() {
            note_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout.
        unsafe { INNER.dealloc(ptr, layout) };
        HEAP_IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let ptr = unsafe { INNER.alloc_zeroed(layout) };
        if !ptr.is_null() {
            note_alloc(layout.size());
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `alloc`; the caller guarantees `ptr` and `layout` match.
        let new = unsafe { INNER.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            HEAP_IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            note_alloc(new_size);
        }
        new
    }
}

fn note_alloc(size: usize) {
    let now = HEAP_IN_USE.fetch_add(size, Ordering::Relaxed) + size;
    if now > HEAP_PEAK.load(Ordering::Relaxed) {
        HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

/// Gives memory that freed objects left behind back to the OS, after load has gone.
///
/// mimalloc returns freed pages only while the process keeps allocating, so after a busy hour an
/// idle server would keep its peak RSS. The sweep calls this every sweep period (it logs how long
/// it took at debug level; it touches no live object).
pub fn return_free_memory() {
    #[cfg(not(feature = "system-alloc"))]
    {
        extern "C" {
            fn mi_collect(force: bool);
        }
        // SAFETY: mi_collect takes no pointers; it is safe to call at any time from any thread.
        unsafe { mi_collect(true) };
    }
}

/// Bytes of heap in use right now (0 when the counting allocator is not installed, as in tests
/// that link the library into their own binary).
pub fn heap_in_use() -> usize {
    HEAP_IN_USE.load(Ordering::Relaxed)
}

/// The most heap ever in use at once.
pub fn heap_peak() -> usize {
    HEAP_PEAK.load(Ordering::Relaxed)
}

/// The part of a capacity anyone may take. The last quarter is kept for newcomers (an address's
/// first few HTTP connections or TURN allocations, messages not yet large), so that holders who
/// keep asking cannot take all of it.
pub const fn open_part(capacity: u64) -> u64 {
    capacity - capacity / 4
}

/// A named share of the budget: a counter that may not pass its capacity.
#[derive(Debug)]
pub struct Arena {
    pub name: &'static str,
    used: AtomicU64,
    capacity: u64,
}

impl Arena {
    pub fn new(name: &'static str, capacity: u64) -> Arena {
        Arena {
            name,
            used: AtomicU64::new(0),
            capacity,
        }
    }

    /// Takes `amount` if it fits; false (and nothing taken) if it does not.
    pub fn try_acquire(&self, amount: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(amount)
                    .filter(|next| *next <= self.capacity)
            })
            .is_ok()
    }

    /// Takes `amount` if the arena stays at or under `limit` (at most its capacity) after it.
    pub fn try_acquire_within(&self, amount: u64, limit: u64) -> bool {
        let limit = limit.min(self.capacity);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(amount).filter(|next| *next <= limit)
            })
            .is_ok()
    }

    pub fn release(&self, amount: u64) {
        let previous = self.used.fetch_sub(amount, Ordering::AcqRel);
        debug_assert!(
            previous >= amount,
            "arena {} released more than held",
            self.name
        );
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }
}

/// The most of the in-flight arena's reserve quarter that the sockets of one address hold
/// together (see `io::inflight`).
pub const RESERVE_PER_ADDRESS: u64 = 64 * 1024;

/// One address's shares of the in-flight arena, which all its sockets draw on together.
#[derive(Debug)]
pub struct AddressShare {
    /// Everything its sockets hold (`rates.ip_in_flight_kib`).
    pub all: Arena,
    /// What they hold of the arena's reserve quarter.
    pub reserve: Arena,
}

impl AddressShare {
    pub fn new(bytes: u64) -> AddressShare {
        AddressShare {
            all: Arena::new("in_flight_address", bytes),
            reserve: Arena::new("in_flight_address_reserve", RESERVE_PER_ADDRESS),
        }
    }

    pub fn used(&self) -> u64 {
        self.all.used()
    }
}

/// One unit of an arena of the budget, given back when dropped.
pub struct Permit {
    budget: std::sync::Arc<Budget>,
    arena: fn(&Budget) -> &Arena,
}

impl Permit {
    pub fn acquire(
        budget: &std::sync::Arc<Budget>,
        arena: fn(&Budget) -> &Arena,
    ) -> Option<Permit> {
        let cap = arena(budget).capacity();
        Permit::acquire_within(budget, arena, cap)
    }

    /// A unit only if the arena stays at or under `limit` after it.
    pub fn acquire_within(
        budget: &std::sync::Arc<Budget>,
        arena: fn(&Budget) -> &Arena,
        limit: u64,
    ) -> Option<Permit> {
        arena(budget).try_acquire_within(1, limit).then(|| Permit {
            budget: budget.clone(),
            arena,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        (self.arena)(&self.budget).release(1);
    }
}

/// All arenas of the budget, built from [`Limits`].
#[derive(Debug)]
pub struct Budget {
    /// Counted in sockets.
    pub sockets: Arena,
    /// Counted in bytes of partly received messages.
    pub in_flight: Arena,
    /// Counted in bytes queued for sending.
    pub outbound: Arena,
    /// Counted in TURN allocations.
    pub allocations: Arena,
    /// Counted in TURN-over-TCP/TLS connections.
    pub turn_streams: Arena,
    /// Counted in HTTP connections not upgraded (yet).
    pub connections: Arena,
    /// When a read last waited on the in-flight arena (ms since `epoch`, plus one; 0: never):
    /// while it is recent, messages that have been open for long are cut to make room.
    pub in_flight_refused_at: AtomicU64,
    pub epoch: std::time::Instant,
    /// Heap bytes past which nothing new is admitted.
    pub heap_ceiling: u64,
    pub total_bytes: u64,
}

impl Budget {
    pub fn new(limits: &Limits) -> Budget {
        Budget {
            sockets: Arena::new("sockets", limits.max_sockets()),
            in_flight: Arena::new("in_flight", limits.in_flight_mib << 20),
            outbound: Arena::new("outbound", limits.outbound_mib << 20),
            allocations: Arena::new("turn_allocations", limits.max_allocations()),
            turn_streams: Arena::new("turn_streams", limits.max_turn_streams()),
            connections: Arena::new("http_connections", limits.max_connections()),
            in_flight_refused_at: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            heap_ceiling: (limits.total_mib - limits.reserve_mib) << 20,
            total_bytes: limits.total_mib << 20,
        }
    }

    /// True while the counted heap leaves room to admit something new.
    pub fn heap_has_room(&self) -> bool {
        (heap_in_use() as u64) < self.heap_ceiling
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arena_never_passes_its_capacity() {
        let arena = Arena::new("test", 10);
        assert!(arena.try_acquire(6));
        assert!(!arena.try_acquire(5), "6 + 5 would pass 10");
        assert_eq!(arena.used(), 6, "a refused acquisition takes nothing");
        assert!(arena.try_acquire(4));
        arena.release(10);
        assert_eq!(arena.used(), 0);
    }

    #[test]
    fn shipped_budget_admits_thousands_of_sockets() {
        let budget = Budget::new(&Limits::shipped());
        assert!(budget.sockets.capacity() >= 10_000);
    }
}
