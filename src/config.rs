//! Run-time settings: command-line flags, `VIDEOMEET_*` environment variables and `--config FILE`,
//! over the defaults baked in from `memlimit.toml`.
//!
//! Precedence, lowest first: shipped defaults, the config file, environment, flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::limits::Limits;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_TLS_LISTEN: &str = "0.0.0.0:8443";

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
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Serve(Box<Config>),
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
  --config FILE          a budget file in memlimit.toml's format; its keys override
                         the shipped defaults [env VIDEOMEET_CONFIG]
  --set SECTION.KEY=N    override one budget key, e.g. --set caps.peers_per_room=4
                         [env VIDEOMEET_SECTION_KEY, e.g. VIDEOMEET_CAPS_PEERS_PER_ROOM=4]
  --ice-servers JSON     RTCIceServer list handed to browsers, e.g.
                         '[{\"urls\":\"stun:stun.example.org:3478\"}]' (default: none)
                         [env VIDEOMEET_ICE_SERVERS]
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
    let mut sets: Vec<(String, String)> = Vec::new();

    let mut args = args.into_iter();
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
    config.tls_listen = match tls_listen.as_deref() {
        Some("off") => None,
        Some(addr) => Some(addr.parse().map_err(|_| {
            format!("--tls-listen wants HOST:PORT such as 0.0.0.0:8443, or off, not `{addr}`")
        })?),
        None => Some(DEFAULT_TLS_LISTEN.parse().expect("default address parses")),
    };
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
    if let Some(json) = ice_servers {
        let value: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("--ice-servers is not JSON: {e}"))?;
        if !value.is_array() {
            return Err("--ice-servers wants a JSON array of RTCIceServer objects".into());
        }
        config.ice_servers = value.to_string();
    }
    Ok(Command::Serve(Box::new(config)))
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
        assert!(matches!(run(&["-V"], &[]), Ok(Command::Version)));
    }
}
