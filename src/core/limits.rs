//! The memory budget, caps and timers of `memlimit.toml`, and the small TOML subset it is written in.
//!
//! This file has no dependencies on purpose: `build.rs` includes it with `#[path]` to check the
//! shipped `memlimit.toml` at build time, so a broken budget fails the build, not the first start.

use std::fmt;

/// The shipped `memlimit.toml`, the defaults every override starts from.
pub const DEFAULT_TOML: &str = include_str!("../../memlimit.toml");

/// Declares [`Limits`] from one list of `section.key` names: the struct, its all-zero start, the
/// key list and the lookup all come from it, so a new key is written once here (and once in
/// `memlimit.toml`, with its comment, and in the README's budget table, which a test checks).
macro_rules! limits_table {
    ($($section:ident . $key:ident,)*) => {
        /// Every number of `memlimit.toml`, in the units its keys name.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Limits {
            $(pub $key: u64,)*
        }

        impl Limits {
            /// Every key at 0, to be filled by [`Limits::apply_toml`].
            pub fn unset() -> Limits {
                Limits { $($key: 0,)* }
            }

            /// All keys as `section.key`, in the order of the list below (by section), for
            /// `--help`, the `VIDEOMEET_*` variables, the unknown-key message and the README check.
            pub const KEYS: &'static [&'static str] =
                &[$(concat!(stringify!($section), ".", stringify!($key)),)*];

            fn slot(&mut self, key: &str) -> Option<&mut u64> {
                $(
                    if key == concat!(stringify!($section), ".", stringify!($key)) {
                        return Some(&mut self.$key);
                    }
                )*
                None
            }
        }
    };
}

limits_table! {
    budget.total_mib,
    budget.reserve_mib,
    arenas.sockets_mib,
    arenas.socket_kib,
    arenas.rooms_mib,
    arenas.room_kib,
    arenas.in_flight_mib,
    arenas.outbound_mib,
    arenas.outbound_per_socket_kib,
    arenas.connections_mib,
    arenas.connection_kib,
    caps.peers_per_room,
    caps.max_message_bytes,
    caps.room_message_bytes,
    timers.room_ttl_secs,
    timers.sweep_secs,
    timers.ping_secs,
    timers.timeout_secs,
    timers.seat_grace_secs,
    timers.join_timeout_secs,
    timers.knock_retry_secs,
    timers.header_timeout_secs,
    timers.message_secs,
    rates.ip_sockets,
    rates.ip_in_flight_kib,
    rates.ip_turn_streams,
    rates.ip_open_connections,
    rates.ip_allocations,
    rates.ip_rooms,
    rates.stun_burst,
    rates.stun_per_sec,
    rates.ip_connections_burst,
    rates.ip_connections_per_min,
    rates.ip_joins_burst,
    rates.ip_joins_per_min,
    rates.password_attempts_burst,
    rates.password_attempts_per_min,
    rates.socket_messages_burst,
    rates.socket_messages_per_sec,
    rates.room_messages_burst,
    rates.room_messages_per_sec,
    rates.tracked_addresses,
    turn.allocations_mib,
    turn.allocation_kib,
    turn.streams_mib,
    turn.stream_kib,
    turn.allocations_per_seat,
    turn.permissions_per_allocation,
    turn.channels_per_allocation,
    turn.allocation_kbit_per_sec,
    turn.seat_kbit_per_sec,
    turn.total_mbit_per_sec,
    turn.lifetime_max_secs,
    turn.nonce_secs,
}

/// A line of a budget file that could not be used, with its 1-based line number (0: whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for LimitsError {}

/// The hard upper bound on seats: the seat list is a fixed-capacity vector of this size.
pub const MAX_PEERS_PER_ROOM: usize = 6;

impl Limits {
    /// The defaults shipped in `memlimit.toml`.
    pub fn shipped() -> Limits {
        let mut limits = Limits::unset();
        limits
            .apply_toml(DEFAULT_TOML)
            .expect("memlimit.toml is checked by build.rs");
        limits
    }

    /// The value of `section.key`, if it is one of [`Limits::KEYS`].
    pub fn get(&self, key: &str) -> Option<u64> {
        self.clone().slot(key).map(|v| *v)
    }

    /// Sets `section.key` to a decimal value (underscores allowed, as in TOML).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let slot = self
            .slot(key)
            .ok_or_else(|| format!("unknown key `{key}` (known: {})", Self::KEYS.join(", ")))?;
        let digits: String = value.trim().chars().filter(|c| *c != '_').collect();
        *slot = digits
            .parse::<u64>()
            .map_err(|_| format!("`{key}` wants a whole number, not `{}`", value.trim()))?;
        Ok(())
    }

    /// Applies every `key = value` of a budget file (sections, comments, integers) and then checks
    /// the result. Keys not given keep their current value.
    pub fn apply_toml(&mut self, text: &str) -> Result<(), LimitsError> {
        let mut section = String::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let err = |message: String| LimitsError {
                line: line_no,
                message,
            };
            let line = match raw.find('#') {
                Some(at) => &raw[..at],
                None => raw,
            }
            .trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .strip_suffix(']')
                    .ok_or_else(|| err("a section header needs a closing `]`".into()))?;
                section = name.trim().to_string();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| err(format!("expected `key = number`, found `{line}`")))?;
            let full = format!("{section}.{}", key.trim());
            self.set(&full, value).map_err(err)?;
        }
        self.check()
            .map_err(|message| LimitsError { line: 0, message })
    }

    /// Checks that the numbers make sense together: the arenas fit the budget, nothing is zero
    /// that must not be, the seat cap fits the seat list.
    pub fn check(&self) -> Result<(), String> {
        for key in Self::KEYS {
            if self.get(key) == Some(0) {
                return Err(format!("`{key}` must be greater than 0"));
            }
        }
        if self.peers_per_room > MAX_PEERS_PER_ROOM as u64 {
            return Err(format!(
                "`caps.peers_per_room` is at most {MAX_PEERS_PER_ROOM} (a full mesh past that is not pleasant)"
            ));
        }
        let arenas = self.sockets_mib
            + self.rooms_mib
            + self.in_flight_mib
            + self.outbound_mib
            + self.allocations_mib
            + self.streams_mib
            + self.connections_mib;
        if arenas + self.reserve_mib > self.total_mib {
            return Err(format!(
                "the arenas ({arenas} MiB) and the reserve ({} MiB) exceed budget.total_mib ({} MiB)",
                self.reserve_mib, self.total_mib
            ));
        }
        if self.outbound_per_socket_kib * 1024 < self.max_message_bytes + 1024 {
            return Err(
                "`arenas.outbound_per_socket_kib` must hold at least one largest message".into(),
            );
        }
        if self.in_flight_mib << 20 < self.max_message_bytes {
            return Err("`arenas.in_flight_mib` must hold at least one largest message".into());
        }
        if self.ip_in_flight_kib * 1024 < self.max_message_bytes {
            return Err("`rates.ip_in_flight_kib` must hold at least one largest message".into());
        }
        if self.timeout_secs <= self.ping_secs {
            return Err("`timers.timeout_secs` must be longer than `timers.ping_secs`".into());
        }
        if self.max_message_bytes < 4096 {
            return Err("`caps.max_message_bytes` must be at least 4096".into());
        }
        Ok(())
    }

    /// How many WebSockets the socket arena admits.
    pub fn max_sockets(&self) -> u64 {
        self.sockets_mib * 1024 / self.socket_kib
    }

    /// How many TURN allocations the relay arena admits.
    pub fn max_allocations(&self) -> u64 {
        self.allocations_mib * 1024 / self.allocation_kib
    }

    /// How many HTTP connections (not upgraded) the connection arena admits.
    pub fn max_connections(&self) -> u64 {
        self.connections_mib * 1024 / self.connection_kib
    }

    /// How many TURN-over-TCP/TLS connections the stream arena admits.
    pub fn max_turn_streams(&self) -> u64 {
        self.streams_mib * 1024 / self.stream_kib
    }

    /// How many rooms the room arena admits.
    pub fn max_rooms(&self) -> u64 {
        self.rooms_mib * 1024 / self.room_kib
    }

    /// One line for the start-up log: how the budget is split.
    pub fn summary(&self) -> String {
        format!(
            "budget {} MiB: sockets {} MiB ({} max, {} KiB each), rooms {} MiB ({} max), \
             in-flight {} MiB, outbound {} MiB ({} KiB per socket), reserve {} MiB; \
             {} peers/room, {} B max message",
            self.total_mib,
            self.sockets_mib,
            self.max_sockets(),
            self.socket_kib,
            self.rooms_mib,
            self.max_rooms(),
            self.in_flight_mib,
            self.outbound_mib,
            self.outbound_per_socket_kib,
            self.reserve_mib,
            self.peers_per_room,
            self.max_message_bytes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_parses_and_fits_half_a_gigabyte() {
        let limits = Limits::shipped();
        assert_eq!(limits.peers_per_room, 6);
        assert_eq!(limits.max_message_bytes, 1 << 20);
        assert_eq!(limits.room_ttl_secs, 6 * 3600);
        assert!(limits.total_mib <= 450);
    }

    #[test]
    fn overrides_apply_and_bad_lines_name_their_line() {
        let mut limits = Limits::shipped();
        limits
            .apply_toml("[caps]\npeers_per_room = 4 # fewer\n")
            .unwrap();
        assert_eq!(limits.peers_per_room, 4);
        let err = limits.apply_toml("\n[caps]\nseats = 3\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("unknown key `caps.seats`"));
        let err = limits
            .apply_toml("[caps]\npeers_per_room = many\n")
            .unwrap_err();
        assert!(err.message.contains("whole number"));
    }

    #[test]
    fn a_budget_that_does_not_add_up_is_refused() {
        let mut limits = Limits::shipped();
        assert!(limits.apply_toml("[budget]\ntotal_mib = 64\n").is_err());
        let mut limits = Limits::shipped();
        assert!(limits.apply_toml("[caps]\npeers_per_room = 7\n").is_err());
    }
}
