//! Which peers the relay talks to, written once and used both ways: a packet goes from a client
//! to a peer, and comes from a peer to a client, only if the peer is
//! - in a network the operator allowed (`--relay-allow`), on any port; or
//! - on this host (an interface address, `--public-ip`, loopback), and then only on one of our
//!   own live relayed ports (relay to relay, two clients behind the same server); or
//! - public: in none of the IANA special-purpose blocks below.
//!
//! Never this host's other services, its loopback or its LAN: a TURN server that relays there
//! is an open proxy into the operator's network. Pure: the live relayed ports are asked of the
//! caller (the allocation table), which knows them.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use crate::util::cidr::in_networks;

/// What the peer rule says of an address, before the port is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// An allowed network or the public internet: any port.
    AnyPort,
    /// This host: only our own live relayed ports.
    OwnRelayedPorts,
    /// Nothing there.
    Nowhere,
}

/// The peer rule, with this host's addresses and the allowed networks it needs.
#[derive(Debug, Clone, Default)]
pub struct PeerRule {
    /// This host's addresses, canonical (IPv4-mapped IPv6 as IPv4).
    own: HashSet<IpAddr>,
    /// `--relay-allow`: networks reachable on any port, even private ones.
    allow: Vec<(IpAddr, u8)>,
}

impl PeerRule {
    /// The rule for a host with addresses `own` and the allowed networks `allow`.
    pub fn new(own: impl IntoIterator<Item = IpAddr>, allow: Vec<(IpAddr, u8)>) -> PeerRule {
        PeerRule {
            own: own.into_iter().map(|ip| ip.to_canonical()).collect(),
            allow,
        }
    }

    /// The one classification both directions and both checks below use. The allowed networks
    /// come first (an operator may allow the host's own LAN), this host before the public
    /// internet (a host's public address is still this host). The unspecified address (which
    /// Linux delivers to this host) is in none, so no permission can name it.
    fn reach(&self, ip: IpAddr) -> Reach {
        let ip = ip.to_canonical();
        if in_networks(ip, &self.allow) {
            Reach::AnyPort
        } else if self.own.contains(&ip) {
            Reach::OwnRelayedPorts
        } else if is_public(ip) {
            Reach::AnyPort
        } else {
            Reach::Nowhere
        }
    }

    /// Whether a permission or channel may name `ip`: some port there may be reachable (for
    /// this host, the port is checked per packet by [`PeerRule::allows`]).
    pub fn may_permit(&self, ip: IpAddr) -> bool {
        self.reach(ip) != Reach::Nowhere
    }

    /// Whether a packet may go to, or come from, `peer`; `relayed(port)` says whether `port` is
    /// one of our live relayed ports.
    pub fn allows(&self, peer: SocketAddr, relayed: impl FnOnce(u16) -> bool) -> bool {
        match self.reach(peer.ip()) {
            Reach::AnyPort => true,
            Reach::OwnRelayedPorts => relayed(peer.port()),
            Reach::Nowhere => false,
        }
    }
}

/// The IANA special-purpose address registries' blocks that are not globally reachable, or that
/// reach somewhere else than their face says (6to4 and NAT64 prefixes embed an IPv4 address that
/// may be private), plus multicast and the reserved 240/4: no relay sends there.
/// <https://www.iana.org/assignments/iana-ipv4-special-registry>,
/// <https://www.iana.org/assignments/iana-ipv6-special-registry>.
const NOT_PUBLIC_V4: [([u8; 4], u8); 17] = [
    ([0, 0, 0, 0], 8),       // "this network"
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared address space (CGNAT)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 31, 196, 0], 24), // AS112-v4 (anycast DNS sinks)
    ([192, 52, 193, 0], 24), // AMT
    ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // private
    ([192, 175, 48, 0], 24), // direct delegation AS112
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 3),     // multicast 224/4, reserved 240/4 and broadcast
];

const NOT_PUBLIC_V6: [(u128, u8); 14] = [
    (0, 128),                                        // unspecified
    (1, 128),                                        // loopback
    (0xffff_0000_0000, 96),                          // IPv4-mapped (checked as IPv4 first)
    (0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96), // NAT64
    (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48), // local-use NAT64
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // discard-only
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23), // IETF protocol assignments
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // documentation
    (0x2002_0000_0000_0000_0000_0000_0000_0000, 16), // 6to4
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // documentation
    (0x5f00_0000_0000_0000_0000_0000_0000_0000, 16), // segment routing SIDs
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7),  // unique local
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // link-local
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8),  // multicast
];

/// Somewhere on the internet: in none of the special-purpose blocks above.
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            !NOT_PUBLIC_V4.iter().any(|(net, len)| {
                let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                bits & mask == u32::from_be_bytes(*net) & mask
            })
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            !NOT_PUBLIC_V6.iter().any(|(net, len)| {
                let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
                bits & mask == net & mask
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A host at 192.168.1.10 (and loopback) whose one live relayed port is 50000.
    fn host(allow: Vec<(IpAddr, u8)>) -> PeerRule {
        PeerRule::new(
            [
                "192.168.1.10".parse().unwrap(),
                "127.0.0.1".parse().unwrap(),
            ],
            allow,
        )
    }

    fn live(port: u16) -> bool {
        port == 50000
    }

    #[test]
    fn own_relayed_ports_are_the_only_local_peers() {
        let rule = host(Vec::new());
        for ok in [
            "127.0.0.1:50000",
            "192.168.1.10:50000",
            "[::ffff:127.0.0.1]:50000",
        ] {
            assert!(rule.allows(addr(ok), live), "{ok}");
        }
        for refused in [
            "127.0.0.1:50001",
            "127.0.0.1:22",
            "192.168.1.10:8080",
            "[::ffff:192.168.1.10]:22",
        ] {
            assert!(!rule.allows(addr(refused), live), "{refused}");
        }
        // The host's addresses may be named in a permission; the port is checked per packet.
        assert!(rule.may_permit("127.0.0.1".parse().unwrap()));
        assert!(rule.may_permit("192.168.1.10".parse().unwrap()));
    }

    #[test]
    fn private_and_special_peers_are_refused() {
        let rule = host(Vec::new());
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "127.0.0.2",
            "0.0.0.0",
            "169.254.1.1",
        ] {
            assert!(!rule.may_permit(ip.parse().unwrap()), "{ip}");
            assert!(!rule.allows(SocketAddr::new(ip.parse().unwrap(), 50000), live));
        }
    }

    #[test]
    fn public_peers_on_any_port() {
        let rule = host(Vec::new());
        assert!(rule.may_permit("8.8.8.8".parse().unwrap()));
        assert!(rule.allows(addr("8.8.8.8:53"), live));
        assert!(rule.allows(addr("[2a00:1450::1]:443"), live));
    }

    #[test]
    fn relay_allow_networks_are_reachable_on_any_port() {
        let rule = host(vec![
            ("10.0.0.0".parse().unwrap(), 8),
            ("192.168.1.0".parse().unwrap(), 24),
        ]);
        assert!(rule.may_permit("10.1.2.3".parse().unwrap()));
        assert!(rule.allows(addr("10.1.2.3:22"), live));
        // An allowed network wins over "this host": the operator allowed the host's own LAN.
        assert!(rule.allows(addr("192.168.1.10:8080"), live));
        // Loopback is still this host.
        assert!(!rule.allows(addr("127.0.0.1:8080"), live));
    }

    #[test]
    fn only_internet_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.20",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            // The rest of the IANA special-purpose tables (issue 13.4).
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "192.88.99.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "240.0.0.1",
            "192.31.196.1",
            "192.175.48.6",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::1",
            "100::1",
            "2001:db8::1",
            "2001::1",
            "2002:c0a8:0101::1",
            "3fff::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "203.1.113.5",
            "2001:4860::8888",
            "::ffff:1.1.1.1",
            "198.20.0.1",
            "192.0.3.1",
            "223.255.255.1",
            "2a00:1450::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
