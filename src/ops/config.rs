//! Run-time settings: command-line flags, `VIDEOMEET_*` environment variables and `--config FILE`,
//! over the defaults baked in from `memlimit.toml`.
//!
//! Precedence, lowest first: shipped defaults, the config file, environment, flags.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::limits::Limits;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_TLS_LISTEN: &str = "0.0.0.0:8443";
pub const DEFAULT_STUN_LISTEN: &str = "0.0.0.0:3478";
/// TURN over TLS: on by default only with the operator's certificate.
pub const DEFAULT_TURNS_LISTEN: &str = "0.0.0.0:5349";
/// The IANA dynamic range, as coturn uses by default.
pub const DEFAULT_RELAY_PORTS: (u16, u16) = (49152, 65535);
/// A day: long enough for any meeting, short enough that a leaked credential dies soon.
pub const DEFAULT_TURN_TTL: u64 = 86_400;

/// Everything `serve` needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub limits: Limits,
    /// An `RTCIceServer` list as JSON, handed to clients in `joined`.
    pub ice_servers: String,
    /// Where HTTPS is served; `None` with `--tls-listen off`.
    pub tls_listen: Option<SocketAddr>,
    /// Whether the operator asked for `tls_listen` (then failing to bind it is fatal; the
    /// default port being taken only turns HTTPS off with a warning).
    pub tls_listen_explicit: bool,
    /// The operator's certificate chain and key (PEM); without them a self-signed one is made.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Holds the certificate and the room store; `None` with `--state-dir off` (nothing kept).
    pub state_dir: Option<PathBuf>,
    /// Reverse proxies whose `X-Forwarded-For`/`-Host`/`-Proto` are believed (address, prefix).
    pub trusted_proxies: Vec<(IpAddr, u8)>,
    /// Page origins, besides the server's own, whose WebSockets are accepted
    /// (`https://meet.example.org`), lower-cased.
    pub allowed_origins: Vec<String>,
    /// Host names, besides the machine's own and its certificate's, that requests may name in
    /// `Host` (against DNS rebinding; see `hosts`), lower-cased.
    pub allowed_hosts: Vec<String>,
    /// Networks, besides loopback and `trusted_proxies`, that may read `/metrics`; `any` is
    /// 0.0.0.0/0 and ::/0.
    pub metrics_from: Vec<(IpAddr, u8)>,
    /// Apply the per-address capacity limits (connections, sockets, joins) to loopback clients
    /// too. Off by default: loopback is this machine itself - a local reverse proxy that was not
    /// listed in `--trusted-proxies` (all its users would share one address's allowance), or
    /// local tests. Wrong-password limits and the global caps apply to loopback regardless.
    pub limit_loopback: bool,
    /// TURN URLs and the shared secret for per-join credentials (coturn's REST scheme).
    pub turn: crate::turn::TurnConfig,
    /// Where the built-in STUN/TURN server listens (UDP and TCP); `None` with `off`.
    pub stun_listen: Option<SocketAddr>,
    /// Whether the operator asked for `stun_listen` (then failing to bind it is fatal).
    pub stun_listen_explicit: bool,
    /// TURN over TLS (`turns:`), with the HTTPS certificate; `None` when off.
    pub turns_listen: Option<SocketAddr>,
    pub turns_listen_explicit: bool,
    /// Ports the relay may bind for relayed addresses, inclusive.
    pub relay_ports: (u16, u16),
    /// Peer networks the relay may reach although they are loopback, private or link-local.
    pub relay_allow: Vec<(IpAddr, u8)>,
    /// The address relayed candidates carry when this host is behind a 1:1 NAT (cloud VMs);
    /// otherwise the local address the client reached.
    pub public_ip: Option<IpAddr>,
}

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

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("default address parses"),
            limits: Limits::shipped(),
            ice_servers: "[]".into(),
            tls_listen: None,
            tls_listen_explicit: false,
            tls_cert: None,
            tls_key: None,
            state_dir: None,
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            metrics_from: Vec::new(),
            limit_loopback: false,
            turn: crate::turn::TurnConfig {
                ttl_secs: DEFAULT_TURN_TTL,
                ..Default::default()
            },
            stun_listen: None,
            stun_listen_explicit: false,
            turns_listen: None,
            turns_listen_explicit: false,
            relay_ports: DEFAULT_RELAY_PORTS,
            relay_allow: Vec::new(),
            public_ip: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Serve(Box<Config>),
    /// `--print-systemd-unit`: the parsed settings and the options as typed, without the flag.
    SystemdUnit(Box<Config>, Vec<String>),
    Help,
    Version,
}

pub fn usage() -> String {
    let mut text = String::from(
        "videomeet: video meetings for up to six people, in one binary.

Usage: videomeet [OPTIONS]

Options:
  --listen HOST:PORT     where to serve HTTP and WebSockets [env VIDEOMEET_LISTEN]
                         (default 0.0.0.0:8080; port 0 picks a free port)
  --tls-listen HOST:PORT where to serve HTTPS, or `off` [env VIDEOMEET_TLS_LISTEN]
                         (default 0.0.0.0:8443; if that port is taken HTTPS is
                         skipped with a warning, an explicit address must bind)
  --tls-cert FILE        certificate chain (PEM), e.g. certbot's fullchain.pem
                         [env VIDEOMEET_TLS_CERT]; reloaded on SIGHUP
  --tls-key FILE         its private key (PEM) [env VIDEOMEET_TLS_KEY]
                         (without both: a self-signed certificate for this host's
                         names and addresses, made once and kept in the state dir)
  --state-dir DIR        the certificate and the room store, or `off`
                         [env VIDEOMEET_STATE_DIR] (default $STATE_DIRECTORY,
                         else $XDG_STATE_HOME/videomeet, else ~/.local/state/videomeet)
  --trusted-proxies LIST reverse proxies (addresses or networks, comma-separated) whose
                         X-Forwarded-For/-Host/-Proto headers are believed
                         [env VIDEOMEET_TRUSTED_PROXIES] (default: none)
  --allowed-origins LIST other page origins allowed to open WebSockets, comma-separated,
                         e.g. https://meet.example.org [env VIDEOMEET_ALLOWED_ORIGINS]
  --allowed-hosts LIST   host names this server is reached by, besides its own name,
                         NAME.local, NAME.SEARCH-DOMAIN, localhost, IP addresses and its
                         certificate's names, e.g. meet.example.org,*.example.org (a DNS
                         name pointing at a router that forwards here); any other Host
                         gets 421, against DNS rebinding [env VIDEOMEET_ALLOWED_HOSTS]
  --metrics-from LIST    networks that may read /metrics besides loopback and the
                         trusted proxies, or `any` [env VIDEOMEET_METRICS_FROM]
                         (default: none; others get 404)
  --limit-loopback       apply the per-address connection, socket and join limits to
                         127.0.0.0/8 and ::1 too (default: those are exempt)
                         [env VIDEOMEET_LIMIT_LOOPBACK=1]
  --turn-urls LIST       TURN servers for browsers behind strict NATs, comma-separated,
                         e.g. turn:turn.example.org:3478,turns:turn.example.org:5349
                         [env VIDEOMEET_TURN_URLS]
  --turn-secret-file F   the secret shared with the TURN server (coturn's
                         static-auth-secret); each join gets its own time-limited
                         username and password from it [env VIDEOMEET_TURN_SECRET
                         holds the secret itself; a flag would show it in `ps`]
  --turn-ttl SECS        how long those credentials last (default 86400)
                         [env VIDEOMEET_TURN_TTL]
  --stun-listen HOST:PORT  the built-in STUN and TURN server (UDP and TCP), or `off`
                         [env VIDEOMEET_STUN_LISTEN] (default 0.0.0.0:3478; if that port
                         is taken it is skipped with a warning). Browsers get its
                         address and a per-seat TURN credential unless --turn-urls
                         names another TURN server.
  --turns-listen HOST:PORT  TURN over TLS with the HTTPS certificate, or `off`
                         [env VIDEOMEET_TURNS_LISTEN] (default 0.0.0.0:5349 with
                         --tls-cert, else off: browsers refuse self-signed TURN)
  --relay-ports LO-HI    UDP ports for relayed addresses (default 49152-65535)
                         [env VIDEOMEET_RELAY_PORTS]
  --relay-allow LIST     peer networks the relay may reach although they are loopback,
                         private or link-local (default: none) [env VIDEOMEET_RELAY_ALLOW]
  --public-ip IP         the address relayed candidates carry when this host is behind
                         a 1:1 NAT, as cloud VMs are [env VIDEOMEET_PUBLIC_IP]
  --config FILE          a budget file in memlimit.toml's format; its keys override
                         the shipped defaults [env VIDEOMEET_CONFIG]
  --set SECTION.KEY=N    override one budget key, e.g. --set caps.peers_per_room=4
                         [env VIDEOMEET_SECTION_KEY, e.g. VIDEOMEET_CAPS_PEERS_PER_ROOM=4]
  --ice-servers JSON     RTCIceServer list handed to browsers, e.g.
                         '[{\"urls\":\"stun:stun.example.org:3478\"}]' (default: none)
                         [env VIDEOMEET_ICE_SERVERS]
  --print-systemd-unit   print a hardened systemd service running this binary with
                         the other options given, and exit (see README, Deploy)
  -h, --help             print this help
  -V, --version          print the version

Logging: RUST_LOG (default info) - one line per join and leave.

Budget keys and their shipped values:
",
    );
    let shipped = Limits::shipped();
    for key in Limits::KEYS {
        let value = shipped.get(key).unwrap_or_default();
        text.push_str(&format!("  {key:<34} {value}\n"));
    }
    text
}

/// Parses flags (without the program name) and the environment into a command.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
    read_file: impl Fn(&str) -> std::io::Result<String>,
) -> Result<Command, String> {
    let mut listen = env("VIDEOMEET_LISTEN");
    let mut config_file = env("VIDEOMEET_CONFIG");
    let mut ice_servers = env("VIDEOMEET_ICE_SERVERS");
    let mut tls_listen = env("VIDEOMEET_TLS_LISTEN");
    let mut tls_cert = env("VIDEOMEET_TLS_CERT");
    let mut tls_key = env("VIDEOMEET_TLS_KEY");
    let mut state_dir = env("VIDEOMEET_STATE_DIR");
    let mut trusted = env("VIDEOMEET_TRUSTED_PROXIES");
    let mut origins = env("VIDEOMEET_ALLOWED_ORIGINS");
    let mut allowed_hosts = env("VIDEOMEET_ALLOWED_HOSTS");
    let mut metrics_from = env("VIDEOMEET_METRICS_FROM");
    let mut turn_urls = env("VIDEOMEET_TURN_URLS");
    let mut turn_secret = env("VIDEOMEET_TURN_SECRET");
    let mut turn_secret_file: Option<String> = None;
    let mut turn_ttl = env("VIDEOMEET_TURN_TTL");
    let mut stun_listen = env("VIDEOMEET_STUN_LISTEN");
    let mut relay_ports = env("VIDEOMEET_RELAY_PORTS");
    let mut turns_listen = env("VIDEOMEET_TURNS_LISTEN");
    let mut relay_allow = env("VIDEOMEET_RELAY_ALLOW");
    let mut public_ip = env("VIDEOMEET_PUBLIC_IP");
    let mut limit_loopback =
        env("VIDEOMEET_LIMIT_LOOPBACK").is_some_and(|v| v == "1" || v == "true");
    let mut sets: Vec<(String, String)> = Vec::new();

    let typed: Vec<String> = args.into_iter().collect();
    let print_unit = typed.iter().any(|a| a == "--print-systemd-unit");
    let typed: Vec<String> = typed
        .into_iter()
        .filter(|a| a != "--print-systemd-unit")
        .collect();
    let mut args = typed.iter().cloned();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value (see --help)"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--listen" => listen = Some(value("--listen")?),
            "--config" => config_file = Some(value("--config")?),
            "--ice-servers" => ice_servers = Some(value("--ice-servers")?),
            "--tls-listen" => tls_listen = Some(value("--tls-listen")?),
            "--tls-cert" => tls_cert = Some(value("--tls-cert")?),
            "--tls-key" => tls_key = Some(value("--tls-key")?),
            "--state-dir" => state_dir = Some(value("--state-dir")?),
            "--trusted-proxies" => trusted = Some(value("--trusted-proxies")?),
            "--allowed-origins" => origins = Some(value("--allowed-origins")?),
            "--allowed-hosts" => allowed_hosts = Some(value("--allowed-hosts")?),
            "--metrics-from" => metrics_from = Some(value("--metrics-from")?),
            "--turn-urls" => turn_urls = Some(value("--turn-urls")?),
            "--turn-secret-file" => turn_secret_file = Some(value("--turn-secret-file")?),
            "--turn-ttl" => turn_ttl = Some(value("--turn-ttl")?),
            "--limit-loopback" => limit_loopback = true,
            "--stun-listen" => stun_listen = Some(value("--stun-listen")?),
            "--relay-ports" => relay_ports = Some(value("--relay-ports")?),
            "--turns-listen" => turns_listen = Some(value("--turns-listen")?),
            "--relay-allow" => relay_allow = Some(value("--relay-allow")?),
            "--public-ip" => public_ip = Some(value("--public-ip")?),
            "--set" => {
                let pair = value("--set")?;
                let (key, val) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--set wants SECTION.KEY=VALUE, not `{pair}`"))?;
                sets.push((key.trim().to_string(), val.to_string()));
            }
            other => return Err(format!("unknown option `{other}` (see --help)")),
        }
    }

    let mut config = Config::default();
    if let Some(path) = config_file {
        let text = read_file(&path).map_err(|e| format!("cannot read --config {path}: {e}"))?;
        config
            .limits
            .apply_toml(&text)
            .map_err(|e| format!("{path}: {e}"))?;
    }
    for key in Limits::KEYS {
        let var = format!("VIDEOMEET_{}", key.replace('.', "_").to_ascii_uppercase());
        if let Some(val) = env(&var) {
            config
                .limits
                .set(key, &val)
                .map_err(|e| format!("{var}: {e}"))?;
        }
    }
    for (key, val) in sets {
        config
            .limits
            .set(&key, &val)
            .map_err(|e| format!("--set: {e}"))?;
    }
    config.limits.check()?;
    if let Some(addr) = listen {
        config.listen = addr
            .parse()
            .map_err(|_| format!("--listen wants HOST:PORT such as 0.0.0.0:8080, not `{addr}`"))?;
    }
    config.tls_listen_explicit = tls_listen.is_some();
    config.tls_listen = optional_listen("--tls-listen", tls_listen, DEFAULT_TLS_LISTEN, true)?;
    match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => {
            config.tls_cert = Some(cert.into());
            config.tls_key = Some(key.into());
        }
        (None, None) => {}
        _ => return Err("--tls-cert and --tls-key go together: give both or neither".into()),
    }
    config.state_dir = match state_dir.as_deref() {
        Some("off") => None,
        Some(dir) if !dir.is_empty() => Some(dir.into()),
        _ => default_state_dir(&env),
    };
    let list = |text: Option<String>| -> Vec<String> {
        text.unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    config.trusted_proxies = list(trusted)
        .iter()
        .map(|net| parse_cidr(net).map_err(|e| format!("--trusted-proxies: {e}")))
        .collect::<Result<_, _>>()?;
    for origin in list(origins) {
        let lower = origin.trim_end_matches('/').to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(format!(
                "--allowed-origins wants origins like https://meet.example.org, not `{origin}`"
            ));
        }
        config.allowed_origins.push(lower);
    }
    for name in list(allowed_hosts) {
        // An IP address is allowed without the flag (see `hosts`); listing one does no harm.
        let host = crate::hosts::host_of(&name).ok_or_else(|| {
            format!("--allowed-hosts wants host names like meet.example.org, not `{name}`")
        })?;
        config.allowed_hosts.push(host);
    }
    for net in list(metrics_from) {
        if net == "any" {
            config.metrics_from.push((IpAddr::from([0u8; 4]), 0));
            config.metrics_from.push((IpAddr::from([0u16; 8]), 0));
        } else {
            config
                .metrics_from
                .push(parse_cidr(&net).map_err(|e| format!("--metrics-from: {e}"))?);
        }
    }
    config.limit_loopback = limit_loopback;
    config.turn.urls = list(turn_urls);
    for url in &config.turn.urls {
        if !(url.starts_with("turn:") || url.starts_with("turns:")) {
            return Err(format!(
                "--turn-urls wants turn: or turns: URLs, not `{url}` (STUN goes in --ice-servers)"
            ));
        }
    }
    if let Some(path) = turn_secret_file {
        let text =
            read_file(&path).map_err(|e| format!("cannot read --turn-secret-file {path}: {e}"))?;
        turn_secret = Some(text.trim().to_string());
    }
    config.turn.secret = turn_secret.unwrap_or_default();
    if let Some(ttl) = turn_ttl {
        config.turn.ttl_secs = ttl
            .trim()
            .parse()
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| format!("--turn-ttl wants seconds, not `{ttl}`"))?;
    }
    if config.turn.urls.is_empty() != config.turn.secret.is_empty() {
        return Err(
            "TURN needs both --turn-urls and a secret (VIDEOMEET_TURN_SECRET or --turn-secret-file)"
                .into(),
        );
    }
    if let Some(json) = ice_servers {
        let value: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("--ice-servers is not JSON: {e}"))?;
        if !value.is_array() {
            return Err("--ice-servers wants a JSON array of RTCIceServer objects".into());
        }
        config.ice_servers = value.to_string();
    }
    config.stun_listen_explicit = stun_listen.is_some();
    config.stun_listen = optional_listen("--stun-listen", stun_listen, DEFAULT_STUN_LISTEN, true)?;
    config.turns_listen_explicit = turns_listen.is_some();
    // TURN over TLS is on by default only with the operator's certificate.
    let with_cert = config.tls_cert.is_some();
    config.turns_listen = optional_listen(
        "--turns-listen",
        turns_listen,
        DEFAULT_TURNS_LISTEN,
        with_cert,
    )?;
    if let Some(range) = relay_ports {
        let parsed = range
            .split_once('-')
            .and_then(|(lo, hi)| Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?)))
            .filter(|(lo, hi): &(u16, u16)| *lo > 0 && lo <= hi);
        config.relay_ports = parsed.ok_or_else(|| {
            format!("--relay-ports wants LOW-HIGH such as 49152-65535, not `{range}`")
        })?;
    }
    config.relay_allow = list(relay_allow)
        .iter()
        .map(|net| parse_cidr(net).map_err(|e| format!("--relay-allow: {e}")))
        .collect::<Result<_, _>>()?;
    if let Some(ip) = public_ip {
        config.public_ip = Some(
            ip.trim()
                .parse()
                .map_err(|_| format!("--public-ip wants an IP address, not `{ip}`"))?,
        );
    }
    if print_unit {
        return Ok(Command::SystemdUnit(Box::new(config), typed));
    }
    Ok(Command::Serve(Box::new(config)))
}

/// A `HOST:PORT`-or-`off` option: what was given, else `default` when `on_by_default`.
fn optional_listen(
    flag: &str,
    given: Option<String>,
    default: &str,
    on_by_default: bool,
) -> Result<Option<SocketAddr>, String> {
    let text = match given.as_deref() {
        Some(text) => text,
        None if on_by_default => default,
        None => return Ok(None),
    };
    if text == "off" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{flag} wants HOST:PORT such as {default}, or off, not `{text}`"))
}

/// systemd's `StateDirectory=` first, then the XDG state home, then `~/.local/state`.
fn default_state_dir(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |key: &str| env(key).filter(|v| !v.is_empty());
    if let Some(dir) = set("STATE_DIRECTORY") {
        // systemd may list several, separated by colons; ours is the first.
        return dir.split(':').next().map(PathBuf::from);
    }
    if let Some(dir) = set("XDG_STATE_HOME") {
        return Some(PathBuf::from(dir).join("videomeet"));
    }
    set("HOME").map(|home| PathBuf::from(home).join(".local/state/videomeet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Command, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(
            args.iter().map(|s| s.to_string()),
            |k| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()),
            |_| Ok("[caps]\npeers_per_room = 3\n".to_string()),
        )
    }

    fn config(cmd: Result<Command, String>) -> Config {
        match cmd {
            Ok(Command::Serve(c)) => *c,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    #[test]
    fn defaults_listen_on_8080() {
        let c = config(run(&[], &[]));
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.limits, Limits::shipped());
        assert_eq!(c.tls_listen.unwrap().to_string(), "0.0.0.0:8443");
        assert!(!c.tls_listen_explicit);
    }

    #[test]
    fn networks_and_origins() {
        let c = config(run(
            &[
                "--trusted-proxies",
                "127.0.0.1, 10.0.0.0/8,fd00::/8",
                "--allowed-origins",
                "https://Meet.Example.org/",
            ],
            &[],
        ));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_networks(ip("10.1.2.3"), &c.trusted_proxies));
        assert!(in_networks(ip("::ffff:127.0.0.1"), &c.trusted_proxies));
        assert!(in_networks(ip("fd12::1"), &c.trusted_proxies));
        assert!(!in_networks(ip("127.0.0.2"), &c.trusted_proxies));
        assert!(!in_networks(ip("11.0.0.1"), &c.trusted_proxies));
        assert!(in_networks(
            ip("1.2.3.4"),
            &[parse_cidr("0.0.0.0/0").unwrap()]
        ));
        assert_eq!(
            c.allowed_origins,
            vec!["https://meet.example.org".to_string()]
        );
        assert!(run(&["--trusted-proxies", "10.0.0.0/33"], &[]).is_err());
        assert!(run(&["--allowed-origins", "meet.example.org"], &[]).is_err());
        assert!(!c.limit_loopback, "loopback is exempt unless asked");
        let c = config(run(
            &["--allowed-hosts", "Meet.Example.org., *.home.example"],
            &[("VIDEOMEET_METRICS_FROM", "10.0.0.0/8")],
        ));
        assert_eq!(c.allowed_hosts, ["meet.example.org", "*.home.example"]);
        assert!(in_networks(ip("10.1.2.3"), &c.metrics_from));
        assert!(!in_networks(ip("11.1.2.3"), &c.metrics_from));
        let any = config(run(&["--metrics-from", "any"], &[])).metrics_from;
        assert!(in_networks(ip("203.0.113.9"), &any) && in_networks(ip("2001:db8::1"), &any));
        assert!(config(run(&[], &[])).metrics_from.is_empty());
        assert!(run(&["--allowed-hosts", "a b"], &[]).is_err());
        assert!(run(&["--metrics-from", "everyone"], &[]).is_err());
        assert!(config(run(&["--limit-loopback"], &[])).limit_loopback);
        assert!(config(run(&[], &[("VIDEOMEET_LIMIT_LOOPBACK", "1")])).limit_loopback);
    }

    #[test]
    fn turn_needs_urls_and_a_secret() {
        let c = config(run(
            &[
                "--turn-urls",
                "turn:t.example:3478, turns:t.example:5349",
                "--turn-ttl",
                "600",
            ],
            &[("VIDEOMEET_TURN_SECRET", "shh")],
        ));
        assert!(c.turn.enabled());
        assert_eq!(c.turn.urls.len(), 2);
        assert_eq!(c.turn.ttl_secs, 600);
        assert!(run(&["--turn-urls", "turn:t.example"], &[])
            .unwrap_err()
            .contains("secret"));
        assert!(run(
            &["--turn-urls", "stun:t.example"],
            &[("VIDEOMEET_TURN_SECRET", "x")]
        )
        .unwrap_err()
        .contains("turn:"));
        // The test file reader hands back a budget file; any text is a secret here.
        let c = config(run(
            &["--turn-urls", "turn:t", "--turn-secret-file", "f"],
            &[],
        ));
        assert!(c.turn.enabled());
        assert!(!config(run(&[], &[])).turn.enabled());
    }

    #[test]
    fn state_dir_follows_systemd_then_xdg_then_home() {
        let dir = |env: &[(&str, &str)]| config(run(&[], env)).state_dir;
        assert_eq!(dir(&[]), None, "no HOME: nothing kept");
        assert_eq!(
            dir(&[("HOME", "/home/pi")]),
            Some("/home/pi/.local/state/videomeet".into())
        );
        assert_eq!(
            dir(&[("HOME", "/home/pi"), ("XDG_STATE_HOME", "/x")]),
            Some("/x/videomeet".into())
        );
        assert_eq!(
            dir(&[
                ("STATE_DIRECTORY", "/var/lib/videomeet:/other"),
                ("HOME", "/h")
            ]),
            Some("/var/lib/videomeet".into())
        );
        let c = config(run(
            &["--state-dir", "off", "--tls-listen", "off"],
            &[("HOME", "/h")],
        ));
        assert_eq!(c.state_dir, None);
        assert_eq!(c.tls_listen, None);
    }

    #[test]
    fn flags_beat_environment_beats_file() {
        let c = config(run(
            &[
                "--config",
                "x.toml",
                "--set",
                "caps.peers_per_room=5",
                "--listen=127.0.0.1:0",
            ],
            &[
                ("VIDEOMEET_CAPS_PEERS_PER_ROOM", "4"),
                ("VIDEOMEET_LISTEN", "1.2.3.4:1"),
            ],
        ));
        assert_eq!(c.limits.peers_per_room, 5);
        assert_eq!(c.listen.to_string(), "127.0.0.1:0");
        let c = config(run(
            &["--config", "x.toml"],
            &[("VIDEOMEET_CAPS_PEERS_PER_ROOM", "4")],
        ));
        assert_eq!(c.limits.peers_per_room, 4);
        let c = config(run(&["--config", "x.toml"], &[]));
        assert_eq!(c.limits.peers_per_room, 3);
    }

    #[test]
    fn mistakes_are_explained() {
        assert!(run(&["--listen", "nowhere"], &[])
            .unwrap_err()
            .contains("HOST:PORT"));
        assert!(run(&["--bogus"], &[])
            .unwrap_err()
            .contains("unknown option"));
        assert!(run(&["--set", "caps.nope=1"], &[])
            .unwrap_err()
            .contains("unknown key"));
        assert!(run(&["--listen"], &[])
            .unwrap_err()
            .contains("needs a value"));
        assert!(run(&["--ice-servers", "{}"], &[]).is_err());
        assert!(run(&["--tls-cert", "c.pem"], &[])
            .unwrap_err()
            .contains("go together"));
        assert!(run(&["--tls-listen", "8443"], &[])
            .unwrap_err()
            .contains("or off"));
        assert!(matches!(run(&["--help"], &[]), Ok(Command::Help)));
        assert!(run(&["--relay-ports", "5000-4000"], &[])
            .unwrap_err()
            .contains("LOW-HIGH"));
        assert!(run(&["--public-ip", "example.org"], &[]).is_err());
        assert!(run(&["--stun-listen", "3478"], &[]).is_err());
        assert!(matches!(run(&["-V"], &[]), Ok(Command::Version)));
    }
}
