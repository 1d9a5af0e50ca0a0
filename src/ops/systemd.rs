//! `videomeet --print-systemd-unit [OPTIONS]`: a hardened service unit for this binary, with the
//! same options the operator typed.
//!
//! Printing it from the binary (not shipping a file) keeps the `ExecStart=` path and the options
//! right for wherever the binary was copied. What the unit does and why:
//! - `DynamicUser=` and `StateDirectory=`: no account to create; the certificate and room store
//!   live in `/var/lib/videomeet` (0700), which the binary finds through `$STATE_DIRECTORY`.
//! - What each option becomes is its [`Unit`] marker in [`FLAGS`](super::config::FLAGS): most
//!   pass as typed; `--state-dir` is dropped (systemd gives the service its own); files that are
//!   often readable by root only (`--tls-cert`, `--tls-key`, `--turn-secret-file`: certbot's
//!   are) reach the service as `LoadCredential=`s, read by systemd as root and copied to a
//!   private directory (`%d`).
//! - `CAP_NET_BIND_SERVICE` only when a listening option (`--listen`, `--tls-listen`,
//!   `--stun-listen`, `--turns-listen`) asks for a port below 1024; no capability otherwise.
//! - `MemoryMax=512M`: the budget in `memlimit.toml` fits well inside it; this is the backstop.

use super::config::{occurrences, Config, Unit};

/// The unit text. `exe` is the binary's absolute path; `args` are the options as typed,
/// without `--print-systemd-unit`; `config` is what they parsed to.
pub fn unit(exe: &str, args: &[String], config: &Config) -> String {
    let mut exec = vec![quote(exe)];
    let mut credentials = Vec::new();
    // `parse` accepted these options, so no mistake is left to meet.
    for found in occurrences(args).flatten() {
        match found.flag.unit {
            Unit::Pass => exec.extend(found.words.iter().map(|word| quote(word))),
            Unit::Drop => {}
            Unit::Credential(name) => {
                let Some(path) = found.value else { continue };
                credentials.push(format!("LoadCredential={name}:{}", escape(&path)));
                exec.push(found.flag.name.to_string());
                exec.push(format!("%d/{name}"));
            }
        }
    }

    // Every socket the server binds: HTTP, HTTPS, STUN/TURN (UDP and TCP), TURN over TLS.
    let low_port = [
        Some(config.listen),
        config.tls_listen,
        config.stun_listen,
        config.turns_listen,
    ]
    .into_iter()
    .flatten()
    .any(|addr| addr.port() < 1024);
    let capabilities = if low_port {
        "# A port below 1024 was asked for: this one capability, nothing else.\n\
         AmbientCapabilities=CAP_NET_BIND_SERVICE\n\
         CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
    } else {
        "CapabilityBoundingSet=\n"
    };
    let mut credentials = credentials.join("\n");
    if !credentials.is_empty() {
        credentials = format!(
            "# Read by systemd as root, handed over in a private directory (%d).\n\
             # After renewing them: systemctl restart videomeet (rooms survive a restart).\n\
             {credentials}\n"
        );
    }

    format!(
        "# VideoMeet as a service. Install:
#   videomeet --print-systemd-unit [OPTIONS] | sudo tee /etc/systemd/system/videomeet.service
#   sudo systemctl daemon-reload && sudo systemctl enable --now videomeet
# Logs: journalctl -u videomeet. Rooms, seats and the certificate are kept in
# /var/lib/videomeet, so restarts and upgrades do not end meetings.

[Unit]
Description=VideoMeet video meetings
After=network-online.target
Wants=network-online.target

[Service]
ExecStart={exec}
ExecReload=/bin/kill -HUP $MAINPID
Environment=RUST_LOG=info
Restart=on-failure
RestartSec=2s
DynamicUser=yes
StateDirectory=videomeet
StateDirectoryMode=0700
{credentials}{capabilities}MemoryMax=512M
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
UMask=0077

[Install]
WantedBy=multi-user.target
",
        exec = exec.join(" ")
    )
}

/// `%` and `$` are specifiers and variables to systemd; doubling them makes them literal.
fn escape(text: &str) -> String {
    text.replace('%', "%%").replace('$', "$$")
}

/// One `ExecStart=` word: bare when it is plain, otherwise double-quoted with C escapes.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c));
    if plain {
        return escape(word);
    }
    let mut out = String::from("\"");
    for c in escape(word).chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::config::{parse, Command};

    fn unit_for(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let Ok(Command::Serve(config)) = parse(args.clone(), |_| None, |_| Ok("s3cret".into()))
        else {
            panic!("options parse")
        };
        unit("/usr/local/bin/videomeet", &args, &config)
    }

    #[test]
    fn default_ports_need_no_capability() {
        let text = unit_for(&[]);
        assert!(text.contains("ExecStart=/usr/local/bin/videomeet\n"));
        assert!(text.contains("CapabilityBoundingSet=\n"));
        assert!(!text.contains("CAP_NET_BIND_SERVICE"));
        for line in [
            "DynamicUser=yes",
            "StateDirectory=videomeet",
            "MemoryMax=512M",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "Restart=on-failure",
        ] {
            assert!(text.contains(line), "{line} missing");
        }
    }

    #[test]
    fn turn_over_tls_on_443_gets_bind_service_too() {
        for args in [
            &["--turns-listen", "0.0.0.0:443"][..],
            &["--stun-listen", "0.0.0.0:53"][..],
        ] {
            let text = unit_for(args);
            assert!(
                text.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE\n"),
                "{args:?}"
            );
        }
    }

    #[test]
    fn port_443_gets_only_bind_service() {
        let text = unit_for(&["--tls-listen", "0.0.0.0:443", "--listen=0.0.0.0:80"]);
        assert!(text.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE\n"));
        assert!(text.contains("CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"));
        assert!(text.contains("--tls-listen 0.0.0.0:443 --listen=0.0.0.0:80"));
    }

    #[test]
    fn files_become_credentials_and_state_dir_is_systemds() {
        let text = unit_for(&[
            "--tls-cert",
            "/etc/letsencrypt/live/meet/fullchain.pem",
            "--tls-key=/etc/letsencrypt/live/meet/privkey.pem",
            "--turn-urls",
            "turn:meet.example.org",
            "--turn-secret-file",
            "/etc/videomeet/turn",
            "--state-dir",
            "/home/me/state",
        ]);
        assert!(
            text.contains("LoadCredential=tls-cert.pem:/etc/letsencrypt/live/meet/fullchain.pem\n")
        );
        assert!(text.contains("LoadCredential=tls-key.pem:/etc/letsencrypt/live/meet/privkey.pem"));
        assert!(text.contains("LoadCredential=turn-secret:/etc/videomeet/turn"));
        assert!(text.contains(
            "--tls-cert %d/tls-cert.pem --tls-key %d/tls-key.pem --turn-urls turn:meet.example.org --turn-secret-file %d/turn-secret\n"
        ));
        assert!(!text.contains("/home/me/state"));
    }

    #[test]
    fn json_and_specifiers_are_quoted() {
        let text = unit_for(&["--ice-servers", r#"[{"urls":"stun:s.example:3478"}]"#]);
        assert!(text.contains(r#"--ice-servers "[{\"urls\":\"stun:s.example:3478\"}]""#));
        assert_eq!(quote("100%"), "\"100%%\"");
        assert_eq!(quote("$HOME"), "\"$$HOME\"");
    }
}
