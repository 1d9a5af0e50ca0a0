//! This machine's names and addresses, read from /proc: what the certificate is made for, the
//! names requests may use (`hosts`), and the addresses the relay treats as its own.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// "localhost", the host name (and its `.local` mDNS form), loopback and every LAN address.
pub fn host_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    names.insert("localhost".to_string());
    names.insert("127.0.0.1".to_string());
    names.insert("::1".to_string());
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim().to_ascii_lowercase();
        if !host.is_empty() && host != "localhost" && valid_dns_name(&host) {
            if !host.contains('.') {
                names.insert(format!("{host}.local"));
            }
            names.insert(host);
        }
    }
    for ip in local_addresses() {
        names.insert(ip.to_string());
    }
    names
}

fn valid_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// This machine's unicast addresses, from /proc (Linux): IPv4 from the routing trie's local
/// host entries, IPv6 from if_inet6 without link-local ones (browsers cannot use those in URLs).
pub fn local_addresses() -> BTreeSet<IpAddr> {
    let mut found = BTreeSet::new();
    if let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") {
        let mut last: Option<IpAddr> = None;
        for line in trie.lines() {
            let line = line.trim_start();
            if let Some(rest) = line
                .strip_prefix("|-- ")
                .or_else(|| line.strip_prefix("+-- "))
            {
                last = rest.split('/').next().and_then(|a| a.trim().parse().ok());
            } else if line.starts_with("/32 host LOCAL") {
                if let Some(ip) = last {
                    found.insert(ip);
                }
            }
        }
    }
    if let Ok(table) = std::fs::read_to_string("/proc/net/if_inet6") {
        for line in table.lines() {
            let Some(hex) = line.split_whitespace().next() else {
                continue;
            };
            if hex.len() != 32 {
                continue;
            }
            let Ok(bits) = u128::from_str_radix(hex, 16) else {
                continue;
            };
            let ip = std::net::Ipv6Addr::from(bits);
            let link_local = (ip.segments()[0] & 0xffc0) == 0xfe80;
            if !link_local {
                found.insert(IpAddr::V6(ip));
            }
        }
    }
    found.retain(|ip| !ip.is_unspecified());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_loopback_and_only_plausible_dns_names() {
        let names = host_names();
        for must in ["localhost", "127.0.0.1", "::1"] {
            assert!(names.contains(must), "{names:?}");
        }
        assert!(valid_dns_name("pi-kitchen.local"));
        assert!(!valid_dns_name("bad_name"));
        assert!(!valid_dns_name("a..b"));
    }
}
