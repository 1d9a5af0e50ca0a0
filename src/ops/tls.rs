//! HTTPS: browsers only grant camera and microphone to localhost or HTTPS pages, so a Pi on a
//! LAN needs TLS out of the box. With `--tls-cert`/`--tls-key` the operator's files are served
//! (reloaded on SIGHUP); otherwise a self-signed certificate for this host's names and LAN
//! addresses is made once, kept in the state directory and reused, so a phone that accepted it
//! once is not asked again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;

use crate::ops::machine::host_names;
use crate::ops::state_dir::write_private;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A self-signed certificate is made valid for 397 days (the longest browsers accept for
/// server certificates) and replaced once it has less than 30 left.
const SELF_SIGNED_DAYS: i64 = 397;
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);
/// More subject alternative names than this and a host is doing something odd; keep the newest.
const MAX_NAMES: usize = 32;

const CERT_FILE: &str = "tls-cert.pem";
const KEY_FILE: &str = "tls-key.pem";
const NAMES_FILE: &str = "tls-names.txt";

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The operator's PEM files (for example from certbot), read again on every reload.
    Files { cert: PathBuf, key: PathBuf },
    /// Made here; kept in the state directory when there is one.
    SelfSigned { dir: Option<PathBuf> },
}

/// The live TLS settings. Each new connection takes the current config; a reload swaps it and
/// leaves connections already open (and their meetings) alone.
pub struct Tls {
    source: Source,
    current: RwLock<Current>,
}

struct Current {
    config: Arc<ServerConfig>,
    fingerprint: String,
    names: Vec<String>,
}

impl Tls {
    pub fn load(source: Source) -> Result<Tls, String> {
        let current = build(&source)?;
        Ok(Tls {
            source,
            current: RwLock::new(current),
        })
    }

    /// Reads the certificate again (SIGHUP). On any error the old one stays in use.
    pub fn reload(&self) -> Result<String, String> {
        let fresh = build(&self.source)?;
        let fingerprint = fresh.fingerprint.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(fingerprint)
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        tokio_rustls::TlsAcceptor::from(current.config.clone())
    }

    /// SHA-256 of the certificate, as browsers show it ("AB:CD:…").
    pub fn fingerprint(&self) -> String {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current.fingerprint.clone()
    }

    /// The names and addresses a self-signed certificate covers, or the DNS names of the
    /// operator's.
    pub fn names(&self) -> Vec<String> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current.names.clone()
    }

    pub fn source(&self) -> &Source {
        &self.source
    }
}

fn build(source: &Source) -> Result<Current, String> {
    let (chain, key, names) = match source {
        Source::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot read certificates from {}: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!("{} holds no certificate", cert.display()));
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
            let names = dns_names(&chain[0]);
            (chain, key, names)
        }
        Source::SelfSigned { dir } => {
            let (cert_pem, key_pem, names) = self_signed(dir.as_deref())?;
            let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
                .map_err(|e| format!("self-signed certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| format!("self-signed key: {e}"))?;
            (vec![cert], key, names)
        }
    };
    let fingerprint = fingerprint(&chain[0]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Current {
        config: Arc::new(config),
        fingerprint,
        names,
    })
}

/// The DNS names (subject alternative names, wildcards included) a certificate is for: the
/// names browsers reach this server by, which `hosts` accepts in `Host`.
fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    match webpki::EndEntityCert::try_from(cert) {
        Ok(cert) => cert
            .valid_dns_names()
            .map(|n| n.to_ascii_lowercase())
            .collect(),
        Err(e) => {
            log::warn!("cannot read the certificate's names ({e:?}); only this host's own names are answered");
            Vec::new()
        }
    }
}

pub fn fingerprint(cert: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// The stored self-signed certificate if it is still good for this host, else a new one
/// (stored when there is a directory). Returns (certificate PEM, key PEM, names covered).
fn self_signed(dir: Option<&Path>) -> Result<(String, String, Vec<String>), String> {
    let wanted = host_names();
    if let Some(dir) = dir {
        if let Some(stored) = read_stored(dir, &wanted) {
            return Ok(stored);
        }
    }
    // Keep the names an older certificate covered, so a laptop that moved between networks
    // keeps working on both; new names first, so the cap drops the oldest.
    let mut names: Vec<String> = wanted.iter().cloned().collect();
    if let Some(dir) = dir {
        for old in read_names(dir) {
            if !names.contains(&old) {
                names.push(old);
            }
        }
    }
    names.truncate(MAX_NAMES);
    let (cert, key) = generate(&names)?;
    if let Some(dir) = dir {
        let written = write_private(&dir.join(KEY_FILE), key.as_bytes())
            .and_then(|()| write_private(&dir.join(CERT_FILE), cert.as_bytes()))
            .and_then(|()| write_private(&dir.join(NAMES_FILE), names.join("\n").as_bytes()));
        match written {
            Ok(()) => log::info!(
                "made a self-signed certificate for {} in {}",
                names.join(", "),
                dir.display()
            ),
            Err(e) => log::warn!(
                "cannot store the certificate in {} ({e}); browsers will ask again after a restart",
                dir.display()
            ),
        }
    }
    Ok((cert, key, names))
}

/// The stored certificate, if it covers every name this host has now and is not near expiry.
fn read_stored(dir: &Path, wanted: &BTreeSet<String>) -> Option<(String, String, Vec<String>)> {
    let cert = std::fs::read_to_string(dir.join(CERT_FILE)).ok()?;
    let key = std::fs::read_to_string(dir.join(KEY_FILE)).ok()?;
    let names = read_names(dir);
    let missing: Vec<&String> = wanted.iter().filter(|n| !names.contains(n)).collect();
    if !missing.is_empty() {
        log::info!("this host is now also known as {missing:?}: making a new certificate");
        return None;
    }
    let made = std::fs::metadata(dir.join(CERT_FILE))
        .and_then(|m| m.modified())
        .ok()?;
    let age = SystemTime::now().duration_since(made).unwrap_or_default();
    let life = Duration::from_secs(SELF_SIGNED_DAYS as u64 * 86_400);
    if age + RENEW_BEFORE >= life {
        log::info!("the self-signed certificate is about to expire: making a new one");
        return None;
    }
    Some((cert, key, names))
}

fn read_names(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(NAMES_FILE))
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn generate(names: &[String]) -> Result<(String, String), String> {
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| format!("certificate names: {e}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "VideoMeet (self-signed)");
    (params.not_before, params.not_after) = validity(crate::util::time::unix_now() as i64);
    let key = rcgen::KeyPair::generate().map_err(|e| format!("key generation: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("self-signing: {e}"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// From a day before `now` (slack for clocks a little behind) to `SELF_SIGNED_DAYS` after it,
/// whole UTC days, with the `time` crate rcgen already links.
fn validity(now: i64) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let day = |unix: i64| {
        time::OffsetDateTime::from_unix_timestamp(unix.div_euclid(86_400) * 86_400)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    (day(now - 86_400), day(now + SELF_SIGNED_DAYS * 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_valid_from_yesterday_for_its_days() {
        use time::{Date, Month};
        // 2026-11-30 00:00:00 UTC, and a second before it.
        let (from, until) = validity(1_795_996_800);
        assert_eq!(
            from.date(),
            Date::from_calendar_date(2026, Month::November, 29).unwrap()
        );
        assert_eq!((until - from).whole_days(), SELF_SIGNED_DAYS + 1);
        let (from, _) = validity(1_795_996_799);
        assert_eq!(
            from.date(),
            Date::from_calendar_date(2026, Month::November, 28).unwrap()
        );
        assert_eq!(from.time(), time::Time::MIDNIGHT);
        // Leap day.
        let (from, _) = validity(951_782_400 + 86_400);
        assert_eq!(
            from.date(),
            Date::from_calendar_date(2000, Month::February, 29).unwrap()
        );
    }

    #[test]
    fn self_signed_is_made_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("videomeet-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let first = Tls::load(Source::SelfSigned {
            dir: Some(dir.clone()),
        })
        .unwrap();
        let again = Tls::load(Source::SelfSigned {
            dir: Some(dir.clone()),
        })
        .unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key is private");
        // A host name the certificate lacks: a new certificate that still covers the old names.
        std::fs::write(dir.join(NAMES_FILE), "localhost\n10.9.8.7\n").unwrap();
        let moved = Tls::load(Source::SelfSigned {
            dir: Some(dir.clone()),
        })
        .unwrap();
        assert_ne!(moved.fingerprint(), first.fingerprint());
        assert!(moved.names().contains(&"10.9.8.7".to_string()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_operator_certificates_dns_names_are_read() {
        let names = [
            "meet.example.org".to_string(),
            "*.home.example".into(),
            "10.0.0.1".into(),
        ];
        let (pem, _) = generate(&names).unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(dns_names(&der), ["meet.example.org", "*.home.example"]);
    }

    #[test]
    fn bad_files_are_explained() {
        let err = Tls::load(Source::Files {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        })
        .err()
        .unwrap();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }
}
