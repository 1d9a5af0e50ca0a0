//! Networks written as `10.0.0.0/8`: parsed once from the settings, matched per request.

use std::net::IpAddr;

/// Parses `10.0.0.0/8`, `192.168.1.5` or `fd00::/8` into (network address, prefix length).
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let ip: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an address or a network like 10.0.0.0/8"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
        None => max,
    };
    Ok((ip, len))
}

/// Whether `ip` is inside one of `nets`.
pub fn in_networks(ip: IpAddr, nets: &[(IpAddr, u8)]) -> bool {
    let ip = ip.to_canonical();
    nets.iter().any(|&(net, len)| match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_is_in_a_network_by_its_prefix_and_mapped_v4_counts_as_v4() {
        let nets = [
            parse_cidr("10.0.0.0/8").unwrap(),
            parse_cidr("127.0.0.1").unwrap(),
        ];
        assert!(in_networks(ip("10.200.1.1"), &nets));
        assert!(in_networks(ip("::ffff:127.0.0.1"), &nets));
        assert!(!in_networks(ip("127.0.0.2"), &nets));
        assert!(in_networks(
            ip("2001:db8::1"),
            &[parse_cidr("::/0").unwrap()]
        ));
    }

    #[test]
    fn a_prefix_past_the_address_length_or_a_name_is_refused() {
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("fd00::/129").is_err());
        assert!(parse_cidr("example.org/8").is_err());
    }
}
