//! A client address as the per-address rules count it.

use std::net::{IpAddr, Ipv6Addr};

/// A client address as counted: IPv4 as is (also when mapped into IPv6), IPv6 by its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrKey(IpAddr);

impl AddrKey {
    pub fn of(ip: IpAddr) -> AddrKey {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                AddrKey(IpAddr::V6(Ipv6Addr::from(bits)))
            }
            v4 => AddrKey(v4),
        }
    }

    /// The address as counted: an IPv4 address, or the first address of an IPv6 /64.
    pub fn ip(self) -> IpAddr {
        self.0
    }
}
