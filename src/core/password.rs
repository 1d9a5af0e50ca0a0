//! Room passwords, stored only as a slow salted hash: PBKDF2-HMAC-SHA256 (RFC 8018) from `ring`,
//! and the constant-time comparison of other secrets.
//!
//! Why PBKDF2-HMAC-SHA256: `ring` is already linked for TLS, so it costs no dependency (2 KiB of
//! binary), its SHA-256 is assembly on x86_64 and aarch64 alike, and `ring::pbkdf2::verify`
//! compares in constant time. A memory-hard KDF (argon2, scrypt) resists GPUs better, but needs a
//! new crate and megabytes per hash outside the memory budget, on a Pi that may be hashing for
//! several joins at once; guessing online is rate limited anyway, so the hash only matters if
//! `rooms.json` (0600) leaks. The cost, [`ITERATIONS`], is measured in `docs/SECURITY.md`.
//!
//! Hashes made before this (`pbkdf2-sha1$60000$…`, a hand-written PBKDF2-HMAC-SHA1) are still
//! read and verified (with ring's PBKDF2_HMAC_SHA1); the next correct password replaces them
//! with the current form ([`PasswordHash::needs_rehash`]).

use std::num::NonZeroU32;
use std::sync::OnceLock;

use ring::{hmac, pbkdf2};

use crate::util::hex::{hex, unhex};

/// Iterations of PBKDF2-HMAC-SHA256 for new hashes: 11 ms measured on the x86 build machine,
/// 67-92 ms estimated on a Raspberry Pi 4 core (docs/SECURITY.md, "Attack: hand-written
/// crypto"). Slow enough to make guessing costly, fast enough that the right password is not
/// felt (it runs off the async threads).
pub const ITERATIONS: u32 = 60_000;

/// Stored hashes claiming more work than this are not believed: a damaged or crafted store must
/// not make one join burn minutes of CPU.
const MAX_ITERATIONS: u32 = 10_000_000;

const SALT_LEN: usize = 16;

/// Which PBKDF2 a stored hash was made with. Only [`Kdf::Sha256`] is made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kdf {
    Sha256,
    /// The format before issue 13: read, verified and replaced on the next correct password.
    Sha1,
}

impl Kdf {
    fn tag(self) -> &'static str {
        match self {
            Kdf::Sha256 => "pbkdf2-sha256",
            Kdf::Sha1 => "pbkdf2-sha1",
        }
    }

    fn algorithm(self) -> pbkdf2::Algorithm {
        match self {
            Kdf::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Kdf::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
        }
    }

    /// Bytes of hash kept: one block of the underlying HMAC.
    fn len(self) -> usize {
        match self {
            Kdf::Sha256 => 32,
            Kdf::Sha1 => 20,
        }
    }
}

/// A salted password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    kdf: Kdf,
    iterations: NonZeroU32,
    salt: [u8; SALT_LEN],
    hash: Box<[u8]>,
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(…)")
    }
}

fn derive(kdf: Kdf, iterations: NonZeroU32, salt: &[u8], password: &[u8], out: &mut [u8]) {
    pbkdf2::derive(kdf.algorithm(), iterations, salt, password, out);
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt and the current KDF and cost.
    pub fn new(password: &str) -> PasswordHash {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).expect("the OS random source is available");
        let kdf = Kdf::Sha256;
        let iterations = NonZeroU32::new(ITERATIONS).expect("ITERATIONS is not zero");
        let mut hash = vec![0u8; kdf.len()].into_boxed_slice();
        derive(kdf, iterations, &salt, password.as_bytes(), &mut hash);
        PasswordHash {
            kdf,
            iterations,
            salt,
            hash,
        }
    }

    /// The form kept in the room store: `pbkdf2-sha256$ITERATIONS$SALT$HASH`, hex.
    pub fn to_stored(&self) -> String {
        format!(
            "{}${}${}${}",
            self.kdf.tag(),
            self.iterations,
            hex(&self.salt),
            hex(&self.hash)
        )
    }

    /// Reads [`PasswordHash::to_stored`]'s form, and the older `pbkdf2-sha1$…`; `None` for
    /// anything else. The iteration count is the stored one, so raising [`ITERATIONS`] later
    /// does not lock anyone out.
    pub fn from_stored(text: &str) -> Option<PasswordHash> {
        let mut parts = text.split('$');
        let kdf = match parts.next()? {
            "pbkdf2-sha256" => Kdf::Sha256,
            "pbkdf2-sha1" => Kdf::Sha1,
            _ => return None,
        };
        let iterations: u32 = parts.next()?.parse().ok()?;
        let iterations = NonZeroU32::new(iterations).filter(|n| n.get() <= MAX_ITERATIONS)?;
        let salt = unhex(parts.next()?)?;
        let hash = unhex(parts.next()?)?;
        if parts.next().is_some() || hash.len() != kdf.len() {
            return None;
        }
        Some(PasswordHash {
            kdf,
            iterations,
            salt: salt.try_into().ok()?,
            hash: hash.into_boxed_slice(),
        })
    }

    /// True if `password` is the one hashed; `ring::pbkdf2::verify` compares in constant time.
    pub fn verify(&self, password: &str) -> bool {
        pbkdf2::verify(
            self.kdf.algorithm(),
            self.iterations,
            &self.salt,
            password.as_bytes(),
            &self.hash,
        )
        .is_ok()
    }

    /// True if this hash was made with an older KDF or cost: the next correct password should
    /// replace it with [`PasswordHash::new`].
    pub fn needs_rehash(&self) -> bool {
        self.kdf != Kdf::Sha256 || self.iterations.get() != ITERATIONS
    }
}

/// HMAC-SHA1 (RFC 2104), which STUN's MESSAGE-INTEGRITY and coturn's REST credentials are
/// defined with. Checking a received tag goes through [`hmac_sha1_verify`], never `==`.
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    hmac::sign(&key, message)
        .as_ref()
        .try_into()
        .expect("an HMAC-SHA1 tag is 20 bytes")
}

/// True if `tag` is the HMAC-SHA1 of `message` under `key`, compared in constant time.
pub fn hmac_sha1_verify(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    hmac::verify(&key, message, tag).is_ok()
}

/// Compares two secrets (seat tokens) in time independent of their contents.
///
/// `ring` keeps its constant-time comparison internal (`ring::constant_time` is deprecated); its
/// public one is `hmac::verify`. So both sides go through HMAC under a random per-process key
/// and the tags are compared by `hmac::verify` ("double HMAC" verification): even a timing leak
/// in that comparison would tell an attacker about tags under a key they do not know, never
/// about the secret itself.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        hmac::Key::new(hmac::HMAC_SHA256, &bytes)
    });
    hmac::verify(key, a, hmac::sign(key, b).as_ref()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive_hex(kdf: Kdf, password: &str, salt: &str, iterations: u32, len: usize) -> String {
        let mut out = vec![0u8; len];
        derive(
            kdf,
            NonZeroU32::new(iterations).unwrap(),
            salt.as_bytes(),
            password.as_bytes(),
            &mut out,
        );
        hex(&out)
    }

    #[test]
    fn pbkdf2_sha256_matches_rfc_7914() {
        // RFC 7914 section 11, the PBKDF2-HMAC-SHA256 vectors (dkLen 64).
        assert_eq!(
            derive_hex(Kdf::Sha256, "passwd", "salt", 1, 64),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
             49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
        assert_eq!(
            derive_hex(Kdf::Sha256, "Password", "NaCl", 80_000, 64),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56\
             a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"
        );
    }

    #[test]
    fn pbkdf2_sha1_matches_rfc_6070() {
        for (iterations, expected) in [
            (1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
            (2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"),
            (4096, "4b007901b765489abead49d926f721d065a429c1"),
        ] {
            assert_eq!(
                derive_hex(Kdf::Sha1, "password", "salt", iterations, 20),
                expected
            );
        }
    }

    #[test]
    fn stored_form_round_trips_and_rejects_anything_else() {
        let hash = PasswordHash::new("open sesame");
        let stored = hash.to_stored();
        assert!(
            stored.starts_with(&format!("pbkdf2-sha256${ITERATIONS}$")),
            "{stored}"
        );
        let back = PasswordHash::from_stored(&stored).unwrap();
        assert_eq!(back, hash);
        assert!(back.verify("open sesame"));
        assert!(!back.needs_rehash());
        for bad in [
            "",
            "plain",
            &stored.replace(&format!("${ITERATIONS}$"), "$0$"),
            &stored.replace(&format!("${ITERATIONS}$"), "$99999999$"),
            &stored[..stored.len() - 2],
            &format!("{stored}$x"),
            &stored.replace("pbkdf2-sha256", "md5"),
            // A SHA-1 tag on a SHA-256-sized hash.
            &stored.replace("pbkdf2-sha256", "pbkdf2-sha1"),
        ] {
            assert!(PasswordHash::from_stored(bad).is_none(), "{bad}");
        }
    }

    /// Made by the hand-written PBKDF2-HMAC-SHA1 before issue 13, and independently by
    /// `python3 -c "import hashlib; print(hashlib.pbkdf2_hmac('sha1', b'open sesame',
    /// bytes(range(16)), 60000).hex())"`.
    const OLD: &str =
        "pbkdf2-sha1$60000$000102030405060708090a0b0c0d0e0f$071c16db7c4b95eaafe67a8d9315651680a5ca80";

    #[test]
    fn an_old_sha1_hash_still_verifies_and_asks_to_be_replaced() {
        let old = PasswordHash::from_stored(OLD).expect("the old form is read");
        assert!(old.verify("open sesame"));
        assert!(!old.verify("open sesame!"));
        assert!(!old.verify(""));
        assert!(old.needs_rehash());
        let upgraded = PasswordHash::new("open sesame");
        assert!(upgraded.to_stored().starts_with("pbkdf2-sha256$"));
        assert!(upgraded.verify("open sesame"));
        assert!(!upgraded.needs_rehash());
    }

    #[test]
    fn only_the_right_password_verifies() {
        let hash = PasswordHash::new("correct horse");
        assert!(hash.verify("correct horse"));
        assert!(!hash.verify("correct horse "));
        assert!(!hash.verify(""));
        assert_ne!(PasswordHash::new("x"), PasswordHash::new("x"), "salted");
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b617318655057264e28bc0b6fb378c8ef146be00",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
        ];
        for (key, message, expected) in cases {
            let tag = hmac_sha1(key, message);
            assert_eq!(hex(&tag), expected);
            assert!(hmac_sha1_verify(key, message, &tag));
            let mut wrong = tag;
            wrong[19] ^= 1;
            assert!(!hmac_sha1_verify(key, message, &wrong));
            assert!(!hmac_sha1_verify(key, message, &tag[..8]), "no short tags");
        }
    }

    /// The KDF's cost on this machine, for docs/SECURITY.md (release build, idle machine):
    /// `cargo test --release --lib password::tests::kdf_cost -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check; run in release"]
    fn kdf_cost() {
        let runs = 21;
        let mut ms: Vec<f64> = (0..runs)
            .map(|_| {
                let start = std::time::Instant::now();
                std::hint::black_box(PasswordHash::new("correct horse battery staple"));
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let median = ms[runs / 2];
        println!(
            "PBKDF2-HMAC-SHA256, {ITERATIONS} iterations: median {median:.2} ms, min {:.2}, max {:.2} \
             ({runs} runs; {:.0} iterations/s)",
            ms[0],
            ms[runs - 1],
            f64::from(ITERATIONS) / median * 1000.0
        );
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(secrets_equal(&[7; 16], &[7; 16]));
        assert!(!secrets_equal(&[7; 16], &[8; 16]));
        let mut last_differs = [7u8; 16];
        last_differs[15] = 0;
        assert!(!secrets_equal(&[7; 16], &last_differs));
        assert!(!secrets_equal(&[7; 16], &[7; 15]));
    }
}
