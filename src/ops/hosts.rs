//! The names this server answers to, against DNS rebinding.
//!
//! A page on `evil.example` can make its own name resolve to `192.168.1.20` a moment later; the
//! browser then sends that page's requests, with `Host: evil.example` and as the same origin, to
//! a VideoMeet on the visitor's LAN, and the page reads the answers. The Origin check does not
//! help (the Origin is the Host). So every request must name this server: one of its names
//! (`localhost`, the host name, its `.local` mDNS form and its name under the LAN's DNS search
//! domains, the certificate's DNS names, what `--allowed-hosts` adds), or an IP literal.
//! Anything else gets 421 Misdirected Request.
//!
//! Why every IP literal passes: rebinding needs a *name* that the attacker can point elsewhere.
//! A browser that sends `Host: 203.0.113.5` loaded its page from that address and connected to
//! it, so the server it reached is that address (directly, or through port forwarding or a cloud
//! VM's 1:1 NAT, whose public address is on no interface here). This keeps those setups working
//! without a flag.
//!
//! Requests from `--trusted-proxies` are not checked: their `Host` is the proxy's choice (often
//! `127.0.0.1`), and the proxy, which routes by name, is where the public names are known.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use crate::ops::tls::Tls;

/// The known names: fixed at start, plus the live certificate's (reloaded on SIGHUP).
#[derive(Default)]
pub struct KnownHosts {
    names: BTreeSet<String>,
    /// The certificate whose DNS names count too, when HTTPS is served.
    tls: OnceLock<Arc<Tls>>,
}

impl KnownHosts {
    /// This machine's names (`machine::host_names`: localhost, the host name, `NAME.local`), the
    /// host name under each DNS search domain of `/etc/resolv.conf` (a home router's
    /// `pi.fritz.box`, `pi.lan`: the LAN's own names, which a web page cannot choose), and the
    /// operator's `--allowed-hosts`.
    pub fn new(extra: &[String]) -> KnownHosts {
        let mut names: BTreeSet<String> = crate::ops::machine::host_names()
            .into_iter()
            .filter(|n| n.parse::<IpAddr>().is_err())
            .collect();
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        names.extend(names_under_search_domains(host.trim(), &resolv));
        names.extend(extra.iter().filter_map(|n| normalize(n)));
        KnownHosts {
            names,
            tls: OnceLock::new(),
        }
    }

    /// Counts the names of the certificate HTTPS serves (the operator's or the self-signed one).
    pub fn add_certificate(&self, tls: Arc<Tls>) {
        let _ = self.tls.set(tls);
    }

    /// Whether a request whose `Host` header is `authority` (`name`, `name:port`, `[v6]:port`)
    /// is for this server. A request without a `Host` comes from no browser (they always send
    /// one), so it cannot be a rebinding page and passes.
    pub fn allows(&self, authority: Option<&str>) -> bool {
        let Some(authority) = authority else {
            return true;
        };
        let Some(host) = host_of(authority) else {
            return false;
        };
        if host.parse::<IpAddr>().is_ok() {
            return true;
        }
        if self.names.contains(&host) || self.names.iter().any(|n| wildcard_match(n, &host)) {
            return true;
        }
        self.tls.get().is_some_and(|tls| {
            tls.names()
                .iter()
                .filter_map(|n| normalize(n))
                .any(|n| n == host || wildcard_match(&n, &host))
        })
    }

    /// The names fixed at start (without the certificate's), for the log line at start.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

/// `HOST.DOMAIN` for each `search` and `domain` entry of a resolv.conf text (the host name's
/// first label, if it is a full name already).
fn names_under_search_domains(host: &str, resolv: &str) -> Vec<String> {
    let Some(label) = host.split('.').next().filter(|l| !l.is_empty()) else {
        return Vec::new();
    };
    resolv
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            matches!(words.next(), Some("search" | "domain")).then_some(words)
        })
        .flatten()
        .filter_map(|domain| normalize(&format!("{label}.{domain}")))
        .filter(|name| !name.contains('*'))
        .collect()
}

/// The host part of a `Host` header, lower-cased and without the port or a trailing dot; an
/// IPv6 literal without its brackets. `None` if it is not a plausible host.
pub fn host_of(authority: &str) -> Option<String> {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return v6
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| ip.to_string());
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if is_port(port) => host,
            Some(_) => return None,
            None => authority,
        }
    };
    normalize(host)
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// A name as compared: lower case, no trailing dot (`pi.local.` is `pi.local`), only the
/// characters a DNS name or an IP literal has.
fn normalize(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._*:".contains(&b);
    (!name.is_empty() && name.len() <= 253 && name.bytes().all(plain)).then_some(name)
}

/// `*.example.org` covers exactly one more label: `meet.example.org`, not `a.b.example.org`.
fn wildcard_match(pattern: &str, host: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    host.strip_suffix(suffix)
        .and_then(|label| label.strip_suffix('.'))
        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(extra: &[&str]) -> KnownHosts {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        KnownHosts::new(&extra)
    }

    #[test]
    fn hosts_are_read_without_port_case_or_trailing_dot() {
        assert_eq!(
            host_of("Meet.Example.org.:8443").as_deref(),
            Some("meet.example.org")
        );
        assert_eq!(host_of("localhost").as_deref(), Some("localhost"));
        assert_eq!(host_of("[::1]:8080").as_deref(), Some("::1"));
        assert_eq!(host_of("[0:0::1]").as_deref(), Some("::1"));
        assert_eq!(host_of("127.0.0.1:8080").as_deref(), Some("127.0.0.1"));
        for bad in [
            "",
            ":8080",
            "[::1",
            "[::1]x",
            "[evil]:80",
            "a b",
            "h:port",
            "h:123456",
        ] {
            assert_eq!(host_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_this_servers_names_and_ip_literals_pass() {
        let hosts = known(&["meet.example.org", "*.home.example"]);
        for ok in [
            "localhost:8080",
            "LOCALHOST.",
            "127.0.0.1:8080",
            "127.3.4.5",
            "[::1]:8443",
            "192.168.1.20:8443",
            "203.0.113.5",
            "meet.example.org",
            "Meet.Example.Org.:443",
            "pi.home.example",
        ] {
            assert!(hosts.allows(Some(ok)), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "meet.example.org.evil.example",
            "example.org",
            "a.b.home.example",
            "home.example",
            "localhost.evil.example",
            "",
        ] {
            assert!(!hosts.allows(Some(refused)), "{refused}");
        }
        assert!(hosts.allows(None), "no Host: not a browser");
    }

    #[test]
    fn the_host_name_under_the_lans_search_domains_is_known() {
        let resolv =
            "# from DHCP\nnameserver 192.168.178.1\nsearch fritz.box home.arpa\ndomain lan.\n";
        assert_eq!(
            names_under_search_domains("pi", resolv),
            ["pi.fritz.box", "pi.home.arpa", "pi.lan"]
        );
        assert_eq!(
            names_under_search_domains("pi.example.org", "search lan"),
            ["pi.lan"]
        );
        assert!(names_under_search_domains("", "search lan").is_empty());
        assert!(names_under_search_domains("pi", "nameserver 1.1.1.1").is_empty());
    }

    #[test]
    fn the_machines_own_name_is_known() {
        let hosts = known(&[]);
        let names: Vec<&str> = hosts.names().collect();
        assert!(names.contains(&"localhost"), "{names:?}");
        if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            let name = name.trim().to_ascii_lowercase();
            if !name.is_empty() && !name.contains('_') {
                assert!(hosts.allows(Some(&name)), "{name} in {names:?}");
            }
        }
    }
}
