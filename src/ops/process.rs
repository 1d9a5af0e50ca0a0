//! Process-wide OS settings, made once at start before any connection is served.

use crate::core::limits::Limits;

/// Turns transparent huge pages off for this process.
///
/// With huge pages, the first small allocation in a fresh 2 MiB-aligned region makes the whole
/// 2 MiB resident: an idle server showed 4 MiB of anonymous RSS holding a few hundred KiB of
/// heap. On a 512 MiB host RSS is the scarce thing, and a signaling server's heap is small
/// objects touched rarely, where huge pages buy nothing. mimalloc is built with `no_thp` (so it
/// does not ask for them with `madvise`); this also covers kernels set to THP `always`.
/// `PR_SET_THP_DISABLE` needs Linux 3.15; elsewhere the default stays.
pub fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments reads and writes no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// File descriptors the budget can admit at once: every WebSocket, every relay allocation (a
/// UDP socket each), every TURN-over-TCP/TLS stream and every HTTP connection its arena admits,
/// and a margin of 256 for the listeners and the rest.
pub fn descriptors_needed(limits: &Limits) -> u64 {
    limits.max_sockets()
        + limits.max_allocations()
        + limits.max_turn_streams()
        + limits.max_connections()
        + 256
}

/// Raises the soft open-file limit toward what the budget admits, as far as the hard limit
/// allows. Most systems start processes at a soft limit of 1,024, which would refuse the
/// 1,000th participant with "too many open files" long before the memory budget is reached.
/// Returns the soft limit now in force, or `None` where it cannot be read.
// `rlim_t` is 32 bits on some 32-bit targets: the casts are not no-ops everywhere.
#[allow(clippy::unnecessary_cast)]
pub fn raise_open_file_limit(needed: u64) -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit read and write only the struct passed in.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            let want = (needed as libc::rlim_t).min(limit.rlim_max);
            if want > limit.rlim_cur {
                let raised = libc::rlimit {
                    rlim_cur: want,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    return Some(want as u64);
                }
            }
        }
        Some(limit.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = needed;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_needs_its_sockets_and_allocations_in_descriptors() {
        let limits = Limits::shipped();
        // 160 MiB / 16 KiB sockets + 8 MiB / 16 KiB allocations + 4 MiB / 8 KiB TURN streams
        // + 24 MiB / 32 KiB HTTP connections + the margin.
        assert_eq!(descriptors_needed(&limits), 10_240 + 512 + 512 + 768 + 256);
    }

    #[test]
    #[allow(clippy::unnecessary_cast)]
    fn the_limit_is_raised_but_never_past_the_hard_limit() {
        let got = raise_open_file_limit(u64::MAX).expect("readable on unix");
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        assert_eq!(got, limit.rlim_cur as u64);
        assert_eq!(limit.rlim_cur, limit.rlim_max);
    }
}
