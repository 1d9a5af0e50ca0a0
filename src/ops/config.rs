//! Run-time settings: command-line flags, `VIDEOMEET_*` environment variables and `--config FILE`,
//! over the defaults baked in from `memlimit.toml`.
//!
//! Precedence, lowest first: shipped defaults, the config file, environment, flags.
//!
//! Every flag is one entry of [`FLAGS`]: its name, value, variable, help, README text, default,
//! what the systemd unit does with it, and how it applies to [`Config`]. [`parse`], [`usage`]
//! (`--help`), [`options_table`] (the README's table, checked by a test) and
//! `systemd::unit` all read that table, so a new flag is one entry there (and a field of
//! [`Config`] if it is a new setting).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::core::limits::Limits;
use crate::util::cidr::parse_cidr;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_TLS_LISTEN: &str = "0.0.0.0:8443";
pub const DEFAULT_STUN_LISTEN: &str = "0.0.0.0:3478";
/// TURN over TLS: on by default only with the operator's certificate.
pub const DEFAULT_TURNS_LISTEN: &str = "0.0.0.0:5349";
/// The IANA dynamic range, as coturn uses by default.
pub const DEFAULT_RELAY_PORTS: (u16, u16) = (49152, 65535);
/// A day: long enough for any meeting, short enough that a leaked credential dies soon.
pub const DEFAULT_TURN_TTL: u64 = 86_400;

/// Everything `serve_on` needs to know.
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
    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Host` are believed (address,
    /// prefix). `X-Forwarded-Proto` is never read: the page finds its own scheme.
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
    pub turn: crate::core::credentials::TurnConfig,
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
            turn: crate::core::credentials::TurnConfig {
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

/// One option: everything `--help`, the README, the systemd unit and the parser know of it.
pub struct Flag {
    /// `--listen`.
    pub name: &'static str,
    /// `-h` for `--help`.
    pub short: Option<&'static str>,
    /// What the value is called (`HOST:PORT`); `None` for a switch, which takes none.
    pub value: Option<&'static str>,
    pub env: Env,
    pub default: DefaultDoc,
    /// For `--help`: plain text, wrapped there.
    pub help: &'static str,
    /// For the README's options table: Markdown, one line.
    pub doc: &'static str,
    pub unit: Unit,
    pub does: Does,
}

/// The environment variable that stands for a flag.
pub enum Env {
    None,
    /// Holds what the flag's value would.
    Same(&'static str),
    /// Turns a switch on when it is `1` or `true`.
    Switch(&'static str),
    /// Holds something else, said in the second field: `VIDEOMEET_TURN_SECRET` is the secret
    /// itself, where the flag names a file (a flag would show the secret in `ps`).
    Own(&'static str, &'static str),
    /// `--set`: every budget key has its own, `VIDEOMEET_<SECTION>_<KEY>`.
    PerKey,
}

/// The default, as `--help` and the README show it.
pub enum DefaultDoc {
    /// A value the flag accepts; a test checks that giving it changes nothing.
    Value(&'static str),
    /// Said in words (Markdown; `--help` drops the backticks).
    Words(&'static str),
    /// Nothing to say.
    Empty,
}

/// What `--print-systemd-unit` puts in `ExecStart=` for a flag given on its command line.
pub enum Unit {
    /// The words as typed.
    Pass,
    /// Nothing: the service's value is systemd's to give (the state directory, a typed one
    /// would escape the sandbox).
    Drop,
    /// A file the service user may not be able to read (certbot's are root's): it becomes a
    /// `LoadCredential=` under this name, and the flag points at systemd's private copy.
    Credential(&'static str),
}

/// What a flag does.
#[derive(Clone, Copy)]
pub enum Does {
    /// Sets part of the [`Config`] from what was given, lowest first (the variable, then each
    /// time the flag was typed). Called for every flag, given or not, in table order; a flag
    /// whose default depends on another comes after it.
    Apply(fn(&mut Build<'_>, &[Given]) -> Result<(), String>),
    Help,
    Version,
    /// Handled before parsing: the other options go into the unit as typed.
    PrintUnit,
}

/// One value given for a flag.
#[derive(Debug, Clone)]
pub struct Given {
    pub text: String,
    pub from: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Env,
    Flag,
}

/// The [`Config`] being built, and what an [`Does::Apply`] may consult.
pub struct Build<'a> {
    pub config: Config,
    env: &'a dyn Fn(&str) -> Option<String>,
    read_file: &'a dyn Fn(&str) -> std::io::Result<String>,
}

const PRINT_UNIT: &str = "--print-systemd-unit";

/// Every option, in `--help` order.
pub static FLAGS: &[Flag] = &[
    Flag {
        name: "--listen",
        short: None,
        value: Some("HOST:PORT"),
        env: Env::Same("VIDEOMEET_LISTEN"),
        default: DefaultDoc::Value(DEFAULT_LISTEN),
        help: "where to serve HTTP and WebSockets; port 0 picks a free port",
        doc: "plain HTTP; port `0` picks a free one",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            if let Some(addr) = last(given) {
                b.config.listen = addr.parse().map_err(|_| {
                    format!("--listen wants HOST:PORT such as {DEFAULT_LISTEN}, not `{addr}`")
                })?;
            }
            Ok(())
        }),
    },
    Flag {
        name: "--tls-listen",
        short: None,
        value: Some("HOST:PORT"),
        env: Env::Same("VIDEOMEET_TLS_LISTEN"),
        default: DefaultDoc::Value(DEFAULT_TLS_LISTEN),
        help: "where to serve HTTPS, or `off`; if the default port is taken HTTPS is skipped \
               with a warning, an explicit address must bind",
        doc: "HTTPS, or `off`. If the default port is taken, HTTPS is skipped with a warning; \
              an address you give must bind",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            b.config.tls_listen_explicit = !given.is_empty();
            b.config.tls_listen =
                optional_listen("--tls-listen", last(given), DEFAULT_TLS_LISTEN, true)?;
            Ok(())
        }),
    },
    Flag {
        name: "--tls-cert",
        short: None,
        value: Some("FILE"),
        env: Env::Same("VIDEOMEET_TLS_CERT"),
        default: DefaultDoc::Words("self-signed"),
        help: "certificate chain (PEM), e.g. certbot's fullchain.pem; reloaded on SIGHUP",
        doc: "PEM certificate chain; reloaded on SIGHUP (a bad file keeps the old one, and the \
              log says why)",
        unit: Unit::Credential("tls-cert.pem"),
        does: Does::Apply(|b, given| {
            b.config.tls_cert = last(given).map(PathBuf::from);
            Ok(())
        }),
    },
    Flag {
        name: "--tls-key",
        short: None,
        value: Some("FILE"),
        env: Env::Same("VIDEOMEET_TLS_KEY"),
        default: DefaultDoc::Words("self-signed"),
        help: "its private key (PEM); without both, a self-signed certificate for this host's \
               names and addresses is made once and kept in the state dir",
        doc: "the certificate's private key (PEM); give both or neither. Without them a \
              self-signed certificate for this host's names and addresses is made once and kept",
        unit: Unit::Credential("tls-key.pem"),
        does: Does::Apply(|b, given| {
            b.config.tls_key = last(given).map(PathBuf::from);
            Ok(())
        }),
    },
    Flag {
        name: "--state-dir",
        short: None,
        value: Some("DIR"),
        env: Env::Same("VIDEOMEET_STATE_DIR"),
        default: DefaultDoc::Words(
            "`$STATE_DIRECTORY`, else `$XDG_STATE_HOME/videomeet`, else \
             `~/.local/state/videomeet`",
        ),
        help: "the certificate and the room store, or `off`",
        doc: "the certificate and the room store, created 0700; `off` keeps nothing",
        unit: Unit::Drop,
        does: Does::Apply(|b, given| {
            b.config.state_dir = match last(given) {
                Some("off") => None,
                Some(dir) if !dir.is_empty() => Some(dir.into()),
                _ => default_state_dir(b.env),
            };
            Ok(())
        }),
    },
    Flag {
        name: "--trusted-proxies",
        short: None,
        value: Some("LIST"),
        env: Env::Same("VIDEOMEET_TRUSTED_PROXIES"),
        default: DefaultDoc::Words("none"),
        help: "reverse proxies (addresses or networks, comma-separated) whose \
               X-Forwarded-For and X-Forwarded-Host headers are believed",
        doc: "reverse proxies (`127.0.0.1,10.0.0.0/8`) whose `X-Forwarded-For` and \
              `X-Forwarded-Host` are believed; per-address limits then count the forwarded address",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            b.config.trusted_proxies = networks("--trusted-proxies", last(given))?;
            Ok(())
        }),
    },
    Flag {
        name: "--allowed-origins",
        short: None,
        value: Some("LIST"),
        env: Env::Same("VIDEOMEET_ALLOWED_ORIGINS"),
        default: DefaultDoc::Words("none"),
        help: "other page origins allowed to open WebSockets, comma-separated, e.g. \
               https://meet.example.org",
        doc: "page origins besides the server's own whose WebSockets are accepted \
              (`https://meet.example.org`); any other `Origin`, or `null`, gets 403",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            for origin in list(last(given)) {
                let lower = origin.trim_end_matches('/').to_ascii_lowercase();
                if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                    return Err(format!(
                        "--allowed-origins wants origins like https://meet.example.org, not \
                         `{origin}`"
                    ));
                }
                b.config.allowed_origins.push(lower);
            }
            Ok(())
        }),
    },
    Flag {
        name: "--allowed-hosts",
        short: None,
        value: Some("LIST"),
        env: Env::Same("VIDEOMEET_ALLOWED_HOSTS"),
        default: DefaultDoc::Words("none"),
        help: "host names this server is reached by, besides its own name, NAME.local, \
               NAME.SEARCH-DOMAIN, localhost, IP addresses and its certificate's names, e.g. \
               meet.example.org,*.example.org (a DNS name pointing at a router that forwards \
               here); any other Host gets 421, against DNS rebinding",
        doc: "host names, besides the ones the server knows itself (its host name, \
              `NAME.local`, the host name under each DNS search domain of `/etc/resolv.conf`, \
              such as `pi.fritz.box`, `localhost`, the certificate's DNS names; IP addresses \
              always pass), that requests may name in `Host`, e.g. \
              `meet.example.org,*.example.org`. Any other `Host` gets 421 Misdirected Request, \
              against DNS rebinding. Add the name your visitors type when the server cannot \
              know it: a DNS name for a router that forwards a port here, a plain-HTTP name \
              without a certificate. Requests from `--trusted-proxies` are not checked (the \
              proxy routes by name)",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            for name in list(last(given)) {
                // An IP address is allowed without the flag (see `hosts`); listing one does no
                // harm.
                let host = crate::ops::hosts::host_of(&name).ok_or_else(|| {
                    format!("--allowed-hosts wants host names like meet.example.org, not `{name}`")
                })?;
                b.config.allowed_hosts.push(host);
            }
            Ok(())
        }),
    },
    Flag {
        name: "--metrics-from",
        short: None,
        value: Some("LIST"),
        env: Env::Same("VIDEOMEET_METRICS_FROM"),
        default: DefaultDoc::Words("none"),
        help: "networks that may read /metrics besides loopback and the trusted proxies, or \
               `any`; others get 404",
        doc: "networks, besides loopback and `--trusted-proxies`, that may read `/metrics` \
              (`10.0.0.0/8,fd00::/8`), or `any`; anyone else gets the same 404 as an address \
              with nothing",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            for net in list(last(given)) {
                if net == "any" {
                    b.config.metrics_from.push((IpAddr::from([0u8; 4]), 0));
                    b.config.metrics_from.push((IpAddr::from([0u16; 8]), 0));
                } else {
                    let net = parse_cidr(&net).map_err(|e| format!("--metrics-from: {e}"))?;
                    b.config.metrics_from.push(net);
                }
            }
            Ok(())
        }),
    },
    Flag {
        name: "--limit-loopback",
        short: None,
        value: None,
        env: Env::Switch("VIDEOMEET_LIMIT_LOOPBACK"),
        default: DefaultDoc::Words("off"),
        help: "apply the per-address connection, socket and join limits to 127.0.0.0/8 and ::1 \
               too (by default those are exempt)",
        doc: "count 127.0.0.0/8 and ::1 in the per-address connection, socket and join limits; \
              by default they are exempt, since loopback is the machine itself (local tests, or \
              a local proxy not yet listed in `--trusted-proxies`, whose users would otherwise \
              share one allowance). Wrong-password limits apply to loopback regardless",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            b.config.limit_loopback = !given.is_empty();
            Ok(())
        }),
    },
    Flag {
        name: "--turn-urls",
        short: None,
        value: Some("LIST"),
        env: Env::Same("VIDEOMEET_TURN_URLS"),
        default: DefaultDoc::Words("none"),
        help: "TURN servers for browsers behind strict NATs, comma-separated, e.g. \
               turn:turn.example.org:3478,turns:turn.example.org:5349",
        doc: "an external TURN server's `turn:`/`turns:` URLs (coturn); with a secret, each \
              join gets a credential for it instead of the built-in relay",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            b.config.turn.urls = list(last(given));
            if let Some(url) = b
                .config
                .turn
                .urls
                .iter()
                .find(|url| !(url.starts_with("turn:") || url.starts_with("turns:")))
            {
                return Err(format!(
                    "--turn-urls wants turn: or turns: URLs, not `{url}` (STUN goes in \
                     --ice-servers)"
                ));
            }
            Ok(())
        }),
    },
    Flag {
        name: "--turn-secret-file",
        short: None,
        value: Some("FILE"),
        env: Env::Own("VIDEOMEET_TURN_SECRET", "the secret itself"),
        default: DefaultDoc::Words("none"),
        help: "the secret shared with the TURN server (coturn's static-auth-secret); each join \
               gets its own time-limited username and password from it; a flag would show the \
               secret itself in `ps`",
        doc: "coturn's `static-auth-secret`",
        unit: Unit::Credential("turn-secret"),
        does: Does::Apply(|b, given| {
            b.config.turn.secret = match given.last() {
                None => String::new(),
                Some(Given {
                    text,
                    from: Origin::Env,
                }) => text.clone(),
                Some(Given {
                    text: path,
                    from: Origin::Flag,
                }) => (b.read_file)(path)
                    .map_err(|e| format!("cannot read --turn-secret-file {path}: {e}"))?
                    .trim()
                    .to_string(),
            };
            Ok(())
        }),
    },
    Flag {
        name: "--turn-ttl",
        short: None,
        value: Some("SECS"),
        env: Env::Same("VIDEOMEET_TURN_TTL"),
        default: DefaultDoc::Value("86400"),
        help: "how long those credentials last",
        doc: "seconds a TURN credential lasts",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            if let Some(ttl) = last(given) {
                b.config.turn.ttl_secs = ttl
                    .trim()
                    .parse()
                    .ok()
                    .filter(|t| *t > 0)
                    .ok_or_else(|| format!("--turn-ttl wants seconds, not `{ttl}`"))?;
            }
            Ok(())
        }),
    },
    Flag {
        name: "--stun-listen",
        short: None,
        value: Some("HOST:PORT"),
        env: Env::Same("VIDEOMEET_STUN_LISTEN"),
        default: DefaultDoc::Value(DEFAULT_STUN_LISTEN),
        help: "the built-in STUN and TURN server (UDP and TCP), or `off`; if the default port \
               is taken it is skipped with a warning. Browsers get its address and a per-seat \
               TURN credential unless --turn-urls names another TURN server.",
        doc: "the built-in STUN and TURN server, UDP and TCP, or `off`. If the default port is \
              taken it is skipped with a warning",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            b.config.stun_listen_explicit = !given.is_empty();
            b.config.stun_listen =
                optional_listen("--stun-listen", last(given), DEFAULT_STUN_LISTEN, true)?;
            Ok(())
        }),
    },
    Flag {
        name: "--turns-listen",
        short: None,
        value: Some("HOST:PORT"),
        env: Env::Same("VIDEOMEET_TURNS_LISTEN"),
        default: DefaultDoc::Words("`0.0.0.0:5349` with `--tls-cert`, else `off`"),
        help: "TURN over TLS with the HTTPS certificate, or `off`; off without --tls-cert, as \
               browsers refuse self-signed TURN",
        doc: "TURN over TLS (`turns:`) with the HTTPS certificate, for networks that let only \
              TLS out; browsers refuse a self-signed certificate here without asking, so it is \
              on only with a real one",
        unit: Unit::Pass,
        // After --tls-cert: on by default only with the operator's certificate.
        does: Does::Apply(|b, given| {
            b.config.turns_listen_explicit = !given.is_empty();
            let with_cert = b.config.tls_cert.is_some();
            b.config.turns_listen = optional_listen(
                "--turns-listen",
                last(given),
                DEFAULT_TURNS_LISTEN,
                with_cert,
            )?;
            Ok(())
        }),
    },
    Flag {
        name: "--relay-ports",
        short: None,
        value: Some("LO-HI"),
        env: Env::Same("VIDEOMEET_RELAY_PORTS"),
        default: DefaultDoc::Value("49152-65535"),
        help: "UDP ports for relayed addresses",
        doc: "UDP ports for relayed addresses",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            if let Some(range) = last(given) {
                let parsed = range
                    .split_once('-')
                    .and_then(|(lo, hi)| Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?)))
                    .filter(|(lo, hi): &(u16, u16)| *lo > 0 && lo <= hi);
                b.config.relay_ports = parsed.ok_or_else(|| {
                    format!("--relay-ports wants LOW-HIGH such as 49152-65535, not `{range}`")
                })?;
            }
            Ok(())
        }),
    },
    Flag {
        name: "--relay-allow",
        short: None,
        value: Some("LIST"),
        env: Env::Same("VIDEOMEET_RELAY_ALLOW"),
        default: DefaultDoc::Words("none"),
        help: "peer networks the relay may reach although they are loopback, private or \
               link-local",
        doc: "peer networks the relay may reach although they are loopback, private or \
              link-local (by default it reaches only public addresses and its own relayed ports)",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            b.config.relay_allow = networks("--relay-allow", last(given))?;
            Ok(())
        }),
    },
    Flag {
        name: "--public-ip",
        short: None,
        value: Some("IP"),
        env: Env::Same("VIDEOMEET_PUBLIC_IP"),
        default: DefaultDoc::Words("the address the client reached"),
        help: "the address relayed candidates carry when this host is behind a 1:1 NAT, as \
               cloud VMs are",
        doc: "the address in relayed candidates, for hosts behind a 1:1 NAT",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            if let Some(ip) = last(given) {
                b.config.public_ip = Some(
                    ip.trim()
                        .parse()
                        .map_err(|_| format!("--public-ip wants an IP address, not `{ip}`"))?,
                );
            }
            Ok(())
        }),
    },
    Flag {
        name: "--config",
        short: None,
        value: Some("FILE"),
        env: Env::Same("VIDEOMEET_CONFIG"),
        default: DefaultDoc::Empty,
        help: "a budget file in memlimit.toml's format; its keys override the shipped defaults",
        doc: "a file in `memlimit.toml`'s format; any subset of keys",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            let Some(path) = last(given) else {
                return Ok(());
            };
            let text =
                (b.read_file)(path).map_err(|e| format!("cannot read --config {path}: {e}"))?;
            b.config
                .limits
                .apply_toml(&text)
                .map_err(|e| format!("{path}: {e}"))
        }),
    },
    Flag {
        name: "--set",
        short: None,
        value: Some("SECTION.KEY=N"),
        env: Env::PerKey,
        default: DefaultDoc::Empty,
        help: "override one budget key, e.g. --set caps.peers_per_room=4; may be repeated",
        doc: "one budget key, e.g. `--set caps.peers_per_room=4` or \
              `VIDEOMEET_CAPS_PEERS_PER_ROOM=4`; every key has its variable",
        unit: Unit::Pass,
        // After --config: the file, then the variables, then the flags.
        does: Does::Apply(|b, given| {
            for key in Limits::KEYS {
                let var = format!("VIDEOMEET_{}", key.replace('.', "_").to_ascii_uppercase());
                if let Some(val) = (b.env)(&var) {
                    b.config
                        .limits
                        .set(key, &val)
                        .map_err(|e| format!("{var}: {e}"))?;
                }
            }
            for Given { text: pair, .. } in given {
                let (key, val) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--set wants SECTION.KEY=VALUE, not `{pair}`"))?;
                b.config
                    .limits
                    .set(key.trim(), val)
                    .map_err(|e| format!("--set: {e}"))?;
            }
            b.config.limits.check()
        }),
    },
    Flag {
        name: "--ice-servers",
        short: None,
        value: Some("JSON"),
        env: Env::Same("VIDEOMEET_ICE_SERVERS"),
        default: DefaultDoc::Value("[]"),
        help: "RTCIceServer list handed to browsers, e.g. \
               '[{\"urls\":\"stun:stun.example.org:3478\"}]'",
        doc: "`RTCIceServer` list for browsers",
        unit: Unit::Pass,
        does: Does::Apply(|b, given| {
            if let Some(json) = last(given) {
                let value: serde_json::Value = serde_json::from_str(json)
                    .map_err(|e| format!("--ice-servers is not JSON: {e}"))?;
                if !value.is_array() {
                    return Err("--ice-servers wants a JSON array of RTCIceServer objects".into());
                }
                b.config.ice_servers = value.to_string();
            }
            Ok(())
        }),
    },
    Flag {
        name: PRINT_UNIT,
        short: None,
        value: None,
        env: Env::None,
        default: DefaultDoc::Empty,
        help: "print a hardened systemd service running this binary with the other options \
               given, and exit (see README, Deploy)",
        doc: "print a hardened systemd unit running this binary with the other options given, \
              and exit",
        unit: Unit::Pass,
        does: Does::PrintUnit,
    },
    Flag {
        name: "--help",
        short: Some("-h"),
        value: None,
        env: Env::None,
        default: DefaultDoc::Empty,
        help: "print this help",
        doc: "print the options and the budget keys with their shipped values",
        unit: Unit::Pass,
        does: Does::Help,
    },
    Flag {
        name: "--version",
        short: Some("-V"),
        value: None,
        env: Env::None,
        default: DefaultDoc::Empty,
        help: "print the version",
        doc: "print the version",
        unit: Unit::Pass,
        does: Does::Version,
    },
];

/// The rules between flags, checked once every flag has applied.
fn rules(config: &Config) -> Result<(), String> {
    if config.tls_cert.is_some() != config.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together: give both or neither".into());
    }
    if config.turn.urls.is_empty() != config.turn.secret.is_empty() {
        return Err(
            "TURN needs both --turn-urls and a secret (VIDEOMEET_TURN_SECRET or --turn-secret-file)"
                .into(),
        );
    }
    Ok(())
}

/// One option found on a command line.
pub struct Found<'a> {
    /// Its place in [`FLAGS`].
    pub index: usize,
    pub flag: &'static Flag,
    /// `--flag VALUE` or `--flag=VALUE`; a switch has none (and ignores `=...`).
    pub value: Option<String>,
    /// The words it took, as typed: one, or two with a separate value.
    pub words: &'a [String],
}

/// The options of `args` in order, each looked up in [`FLAGS`]; stops at the first mistake.
pub fn occurrences(args: &[String]) -> impl Iterator<Item = Result<Found<'_>, String>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = at;
        let arg = args.get(start)?;
        at += 1;
        let (name, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (arg.as_str(), None),
        };
        let Some(index) = FLAGS
            .iter()
            .position(|f| f.name == name || f.short == Some(name))
        else {
            at = args.len();
            return Some(Err(format!("unknown option `{name}` (see --help)")));
        };
        let flag = &FLAGS[index];
        let value = match (flag.value, inline) {
            (None, _) => None,
            (Some(_), Some(value)) => Some(value.to_string()),
            (Some(_), None) => {
                let Some(next) = args.get(at) else {
                    return Some(Err(format!("{} needs a value (see --help)", flag.name)));
                };
                at += 1;
                Some(next.clone())
            }
        };
        Some(Ok(Found {
            index,
            flag,
            value,
            words: &args[start..at],
        }))
    })
}

/// Parses flags (without the program name) and the environment into a command.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
    read_file: impl Fn(&str) -> std::io::Result<String>,
) -> Result<Command, String> {
    let typed: Vec<String> = args.into_iter().collect();
    let print_unit = typed.iter().any(|a| a == PRINT_UNIT);
    let typed: Vec<String> = typed.into_iter().filter(|a| a != PRINT_UNIT).collect();

    // Lowest first: the variable, then each time the flag was typed.
    let mut given: Vec<Vec<Given>> = FLAGS.iter().map(|flag| flag.env.read(&env)).collect();
    for found in occurrences(&typed) {
        let found = found?;
        match found.flag.does {
            Does::Help => return Ok(Command::Help),
            Does::Version => return Ok(Command::Version),
            Does::PrintUnit => {}
            Does::Apply(_) => given[found.index].push(Given {
                text: found.value.unwrap_or_default(),
                from: Origin::Flag,
            }),
        }
    }

    let mut build = Build {
        config: Config::default(),
        env: &env,
        read_file: &read_file,
    };
    for (flag, given) in FLAGS.iter().zip(&given) {
        if let Does::Apply(apply) = flag.does {
            apply(&mut build, given)?;
        }
    }
    rules(&build.config)?;
    let config = Box::new(build.config);
    if print_unit {
        return Ok(Command::SystemdUnit(config, typed));
    }
    Ok(Command::Serve(config))
}

impl Env {
    /// What the environment gives for the flag, as its lowest value.
    fn read(&self, env: &impl Fn(&str) -> Option<String>) -> Vec<Given> {
        let text = match *self {
            Env::None | Env::PerKey => None,
            Env::Same(var) | Env::Own(var, _) => env(var),
            Env::Switch(var) => env(var).filter(|v| v == "1" || v == "true"),
        };
        text.map(|text| Given {
            text,
            from: Origin::Env,
        })
        .into_iter()
        .collect()
    }

    fn help(&self) -> Option<String> {
        match *self {
            Env::None => None,
            Env::Same(var) => Some(format!("[env {var}]")),
            Env::Switch(var) => Some(format!("[env {var}=1]")),
            Env::Own(var, holds) => Some(format!("[env {var} holds {holds}]")),
            Env::PerKey => Some(
                "[env VIDEOMEET_SECTION_KEY, e.g. VIDEOMEET_CAPS_PEERS_PER_ROOM=4]".to_string(),
            ),
        }
    }

    fn doc(&self) -> String {
        match *self {
            Env::None => String::new(),
            Env::Same(var) => format!("`{var}`"),
            Env::Switch(var) => format!("`{var}=1`"),
            Env::Own(var, holds) => format!("`{var}` ({holds})"),
            Env::PerKey => "`VIDEOMEET_SECTION_KEY`".to_string(),
        }
    }
}

impl DefaultDoc {
    fn help(&self) -> Option<String> {
        match *self {
            DefaultDoc::Value(value) => Some(format!("(default: {value})")),
            DefaultDoc::Words(words) => Some(format!("(default: {})", words.replace('`', ""))),
            DefaultDoc::Empty => None,
        }
    }

    fn doc(&self) -> String {
        match *self {
            DefaultDoc::Value(value) => format!("`{value}`"),
            DefaultDoc::Words(words) => words.to_string(),
            DefaultDoc::Empty => String::new(),
        }
    }
}

impl Flag {
    /// `--listen HOST:PORT`.
    fn synopsis(&self) -> String {
        match self.value {
            Some(value) => format!("{} {value}", self.name),
            None => self.name.to_string(),
        }
    }
}

/// `--help`: every flag of [`FLAGS`], then the budget keys with their shipped values.
pub fn usage() -> String {
    const INDENT: usize = 28;
    const WIDTH: usize = 94;
    let mut text = String::from(
        "videomeet: video meetings for up to six people, in one binary.\n\n\
         Usage: videomeet [OPTIONS]\n\nOptions:\n",
    );
    for flag in FLAGS {
        let short = flag.short.map(|s| format!("{s}, ")).unwrap_or_default();
        let synopsis = format!("{short}{}", flag.synopsis());
        let mut line = format!("  {synopsis:<w$}", w = INDENT - 3);
        // The variable stays on one line, so it reads as one.
        let default = flag.default.help().unwrap_or_default();
        let words = flag
            .help
            .split_whitespace()
            .map(str::to_string)
            .chain(flag.env.help())
            .chain(default.split_whitespace().map(str::to_string));
        for word in words {
            if line.len() + 1 + word.len() > WIDTH && line.len() > INDENT {
                text.push_str(&line);
                text.push('\n');
                line = " ".repeat(INDENT - 1);
            }
            line.push(' ');
            line.push_str(&word);
        }
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str(
        "\nLogging: RUST_LOG (default info) - one line per join and leave.\n\n\
         Budget keys and their shipped values:\n",
    );
    let shipped = Limits::shipped();
    for key in Limits::KEYS {
        let value = shipped.get(key).unwrap_or_default();
        text.push_str(&format!("  {key:<34} {value}\n"));
    }
    text
}

/// The README's options table (Markdown), one row per flag of [`FLAGS`].
pub fn options_table() -> String {
    let mut table = String::from("| flag | environment | default | |\n|---|---|---|---|\n");
    for flag in FLAGS {
        let short = flag.short.map(|s| format!("`{s}`, ")).unwrap_or_default();
        let names = format!("{short}`{}`", flag.synopsis());
        table.push_str(&format!(
            "| {names} | {} | {} | {} |\n",
            flag.env.doc(),
            flag.default.doc(),
            flag.doc
        ));
    }
    table
}

/// The last value given, which wins.
fn last(given: &[Given]) -> Option<&str> {
    given.last().map(|given| given.text.as_str())
}

/// A comma-separated list, blanks dropped.
fn list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A comma-separated list of networks; a mistake names `flag`.
fn networks(flag: &str, text: Option<&str>) -> Result<Vec<(IpAddr, u8)>, String> {
    list(text)
        .iter()
        .map(|net| parse_cidr(net).map_err(|e| format!("{flag}: {e}")))
        .collect()
}

/// A `HOST:PORT`-or-`off` option: what was given, else `default` when `on_by_default`.
fn optional_listen(
    flag: &str,
    given: Option<&str>,
    default: &str,
    on_by_default: bool,
) -> Result<Option<SocketAddr>, String> {
    let text = match given {
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
fn default_state_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
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
    use crate::util::cidr::in_networks;

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

    /// The Debug text of a parse, with what says "the operator asked" cleared: giving a value
    /// explicitly is allowed to differ there.
    fn settled(cmd: Result<Command, String>) -> Result<String, String> {
        cmd.map(|cmd| match cmd {
            Command::Serve(mut c) => {
                c.tls_listen_explicit = false;
                c.stun_listen_explicit = false;
                c.turns_listen_explicit = false;
                format!("{c:?}")
            }
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn a_documented_default_is_the_default() {
        let default = settled(run(&[], &[]));
        for flag in FLAGS {
            if let DefaultDoc::Value(value) = flag.default {
                assert_eq!(
                    settled(run(&[flag.name, value], &[])),
                    default,
                    "{} {value} is documented as the default",
                    flag.name
                );
            }
        }
    }

    #[test]
    fn each_variable_means_what_its_flag_means() {
        for flag in FLAGS {
            let Env::Same(var) = flag.env else { continue };
            for value in [
                "127.0.0.1:9",
                "off",
                "10.0.0.0/8",
                "turn:t",
                "[]",
                "1-2",
                "x y",
                "",
            ] {
                assert_eq!(
                    format!("{:?}", run(&[flag.name, value], &[])),
                    format!("{:?}", run(&[], &[(var, value)])),
                    "{} {value:?} and {var}={value:?}",
                    flag.name
                );
            }
        }
        assert!(!config(run(&[], &[("VIDEOMEET_LIMIT_LOOPBACK", "0")])).limit_loopback);
        assert!(
            config(run(&["--limit-loopback=0"], &[])).limit_loopback,
            "a switch takes no value"
        );
        let c = config(run(
            &["--turn-urls", "turn:t"],
            &[("VIDEOMEET_TURN_SECRET", " s ")],
        ));
        assert_eq!(
            c.turn.secret, " s ",
            "the variable is the secret itself, as given"
        );
    }

    #[test]
    fn variables_are_named_after_their_flags() {
        for flag in FLAGS {
            if let Env::Same(var) | Env::Switch(var) = flag.env {
                let name = flag.name.trim_start_matches("--").replace('-', "_");
                assert_eq!(var, format!("VIDEOMEET_{}", name.to_ascii_uppercase()));
            }
        }
    }

    #[test]
    fn help_names_every_flag_once_and_fits_a_terminal() {
        let help = usage();
        for (i, flag) in FLAGS.iter().enumerate() {
            let short = flag.short.map(|s| format!("{s}, ")).unwrap_or_default();
            let synopsis = format!("  {short}{} ", flag.synopsis());
            assert!(help.contains(&synopsis), "{}", flag.name);
            for other in &FLAGS[i + 1..] {
                assert_ne!(flag.name, other.name);
                assert!(flag.short.is_none() || flag.short != other.short);
            }
        }
        for line in help.lines() {
            assert!(line.len() <= 94, "too wide: {line}");
        }
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
