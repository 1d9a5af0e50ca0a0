//! Run-time settings: command-line flags, `VIDEOMEET_*` environment variables and `--config FILE`,
//! over the defaults baked in from `memlimit.toml`.
//!
//! Precedence, lowest first: shipped defaults, the config file, environment, flags.

use std::net::SocketAddr;

use crate::limits::Limits;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// Everything `serve` needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub limits: Limits,
    /// An `RTCIceServer` list as JSON, handed to clients in `joined`.
    pub ice_servers: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("default address parses"),
            limits: Limits::shipped(),
            ice_servers: "[]".into(),
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
        assert!(matches!(run(&["--help"], &[]), Ok(Command::Help)));
        assert!(matches!(run(&["-V"], &[]), Ok(Command::Version)));
    }
}
