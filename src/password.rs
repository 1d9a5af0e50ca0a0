//! Room passwords, stored only as a slow salted hash: PBKDF2-HMAC-SHA1 (RFC 8018).
//!
//! Why PBKDF2-SHA1 and not argon2 or bcrypt: SHA-1 is already in the binary (the WebSocket
//! handshake needs it), so this costs ~60 lines and no dependency. PBKDF2-HMAC-SHA1 is still a
//! sound password KDF (HMAC does not rely on SHA-1's collision resistance); the iteration count
//! makes each guess cost ~30 ms on a Raspberry Pi 4, and attempts are rate limited besides.

use sha1::{Digest, Sha1};

use crate::protocol::unhex;

/// Iterations of PBKDF2: slow enough to make guessing costly, fast enough that the right
/// password is not felt (it runs off the async threads).
pub const ITERATIONS: u32 = 60_000;

/// A salted password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    salt: [u8; 16],
    hash: [u8; 20],
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(…)")
    }
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt.
    pub fn new(password: &str) -> PasswordHash {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).expect("the OS random source is available");
        PasswordHash {
            salt,
            hash: pbkdf2_sha1(password.as_bytes(), &salt, ITERATIONS),
        }
    }

    /// The form kept in the room store: `pbkdf2-sha1$ITERATIONS$SALT$HASH`, hex.
    pub fn to_stored(&self) -> String {
        format!(
            "pbkdf2-sha1${ITERATIONS}${}${}",
            hex(&self.salt),
            hex(&self.hash)
        )
    }

    /// Reads [`PasswordHash::to_stored`]'s form; `None` for anything else (including another
    /// iteration count, which would silently never match).
    pub fn from_stored(text: &str) -> Option<PasswordHash> {
        let mut parts = text.split('$');
        if parts.next()? != "pbkdf2-sha1" || parts.next()? != ITERATIONS.to_string() {
            return None;
        }
        let salt = unhex(parts.next()?)?;
        let hash = unhex(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(PasswordHash {
            salt: salt.try_into().ok()?,
            hash: hash.try_into().ok()?,
        })
    }

    /// True if `password` is the one hashed; the comparison takes the same time wherever the
    /// hashes differ.
    pub fn verify(&self, password: &str) -> bool {
        let candidate = pbkdf2_sha1(password.as_bytes(), &self.salt, ITERATIONS);
        candidate
            .iter()
            .zip(self.hash.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const BLOCK: usize = 64;

/// HMAC-SHA1 (RFC 2104).
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut pads = HmacPads::new(key);
    pads.mac(message)
}

/// The inner and outer hash states after absorbing the padded key, reused for every block of
/// PBKDF2 so each iteration costs two compressions, not four.
struct HmacPads {
    inner: Sha1,
    outer: Sha1,
}

impl HmacPads {
    fn new(key: &[u8]) -> HmacPads {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..20].copy_from_slice(&Sha1::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut ipad = [0x36u8; BLOCK];
        let mut opad = [0x5cu8; BLOCK];
        for i in 0..BLOCK {
            ipad[i] ^= block[i];
            opad[i] ^= block[i];
        }
        let mut inner = Sha1::new();
        inner.update(ipad);
        let mut outer = Sha1::new();
        outer.update(opad);
        HmacPads { inner, outer }
    }

    fn mac(&mut self, message: &[u8]) -> [u8; 20] {
        let mut inner = self.inner.clone();
        inner.update(message);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

/// PBKDF2-HMAC-SHA1 with a 20-byte output (one block).
pub fn pbkdf2_sha1(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 20] {
    let mut pads = HmacPads::new(password);
    let mut first = Vec::with_capacity(salt.len() + 4);
    first.extend_from_slice(salt);
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = pads.mac(&first);
    let mut out = u;
    for _ in 1..iterations {
        u = pads.mac(&u);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips_and_rejects_anything_else() {
        let hash = PasswordHash::new("open sesame");
        let stored = hash.to_stored();
        assert!(stored.starts_with("pbkdf2-sha1$60000$"), "{stored}");
        let back = PasswordHash::from_stored(&stored).unwrap();
        assert_eq!(back, hash);
        assert!(back.verify("open sesame"));
        for bad in [
            "",
            "plain",
            &stored.replace("60000", "1000"),
            &stored[..stored.len() - 2],
            &format!("{stored}$x"),
            &stored.replace("pbkdf2-sha1", "md5"),
        ] {
            assert!(PasswordHash::from_stored(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        assert_eq!(
            hex(&hmac_sha1(&[0x0b; 20], b"Hi There")),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            hex(&hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex(&hmac_sha1(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn pbkdf2_matches_rfc_6070() {
        assert_eq!(
            hex(&pbkdf2_sha1(b"password", b"salt", 1)),
            "0c60c80f961f0e71f3a9b524af6012062fe037a6"
        );
        assert_eq!(
            hex(&pbkdf2_sha1(b"password", b"salt", 2)),
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
        );
        assert_eq!(
            hex(&pbkdf2_sha1(b"password", b"salt", 4096)),
            "4b007901b765489abead49d926f721d065a429c1"
        );
    }

    #[test]
    fn only_the_right_password_verifies() {
        let hash = PasswordHash::new("correct horse");
        assert!(hash.verify("correct horse"));
        assert!(!hash.verify("correct horse "));
        assert!(!hash.verify(""));
        assert_ne!(PasswordHash::new("x"), PasswordHash::new("x"), "salted");
    }
}
