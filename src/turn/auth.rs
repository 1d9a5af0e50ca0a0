//! Who the relay answers: the long-term credential check of RFC 8489 §9.2 over the REST
//! credentials of `credentials` (username `EXPIRY:SEAT`, password `base64(HMAC-SHA1(secret,
//! username))`), with stateless nonces, and the rate of answers to requests that carry no valid
//! credential.
//!
//! A nonce carries its own expiry and is bound to the client's address by an HMAC under a key of
//! this process, so the server keeps no state per client. MACs are checked in constant time
//! (`ring::hmac::verify`). Pure: the Unix time and the seat directory's answer are passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use super::codec::{self, attr, Builder, Class, Message};
use crate::admission::guard::AddrKey;
use crate::core::bucket::{Bucket, Rate};
use crate::core::credentials::base64;
use crate::core::ids::SeatId;
use crate::core::password::{hmac_sha1, hmac_sha1_verify};

pub const REALM: &str = "videomeet";

/// The checker: the credential secret and the nonce key of this process.
pub struct Auth {
    secret: Vec<u8>,
    nonce_key: [u8; 32],
    /// How long a nonce is good for (`turn.nonce_secs`).
    nonce_secs: u64,
}

/// A request's credential, checked: whose it is and the key its answer is signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub seat: SeatId,
    pub key: [u8; 16],
}

/// Why a request's credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A signed request without USERNAME, REALM or NONCE: 400, no challenge.
    BadRequest,
    /// No MESSAGE-INTEGRITY, an unknown or expired username, a wrong MAC, a seat gone: 401.
    Unauthorized,
    /// A nonce not ours, not for this address, or expired: 438.
    StaleNonce,
}

impl Refused {
    pub fn code(self) -> u16 {
        match self {
            Refused::BadRequest => 400,
            Refused::Unauthorized => 401,
            Refused::StaleNonce => 438,
        }
    }
}

impl Auth {
    pub fn new(secret: &[u8], nonce_key: [u8; 32], nonce_secs: u64) -> Auth {
        Auth {
            secret: secret.to_vec(),
            nonce_key,
            nonce_secs,
        }
    }

    /// Checks the long-term credential of `msg` from `from` at Unix time `now_unix`: a nonce of
    /// ours for that address that has not expired, a username `EXPIRY:SEAT` not past its expiry
    /// for a seat that is `seated`, and MESSAGE-INTEGRITY under the key its REST password gives.
    pub fn check(
        &self,
        msg: &Message,
        from: IpAddr,
        now_unix: u64,
        seated: impl FnOnce(SeatId) -> bool,
    ) -> Result<Credential, Refused> {
        if !msg.has(attr::MESSAGE_INTEGRITY) {
            return Err(Refused::Unauthorized);
        }
        let (Some(username), Some(_), Some(nonce)) = (
            msg.text(attr::USERNAME),
            msg.get(attr::REALM),
            msg.text(attr::NONCE),
        ) else {
            return Err(Refused::BadRequest);
        };
        if !self.nonce_ok(nonce, from, now_unix) {
            return Err(Refused::StaleNonce);
        }
        let Some((expiry, seat)) = username
            .split_once(':')
            .and_then(|(e, s)| Some((e.parse::<u64>().ok()?, SeatId(s.parse().ok()?))))
        else {
            return Err(Refused::Unauthorized);
        };
        let password = base64(&hmac_sha1(&self.secret, username.as_bytes()));
        let key = codec::long_term_key(username, REALM, &password);
        if !msg.integrity_ok(&key) || expiry < now_unix {
            return Err(Refused::Unauthorized);
        }
        // The credential is ours and current; the seat it was made for must still exist.
        if !seated(seat) {
            return Err(Refused::Unauthorized);
        }
        Ok(Credential {
            username: username.to_string(),
            seat,
            key,
        })
    }

    /// The answer to a refused request: a 401 or 438 carries the realm and a fresh nonce for
    /// `from` (so the client can retry at once); a 400 nothing.
    pub fn refusal(&self, msg: &Message, refused: Refused, from: IpAddr, now_unix: u64) -> Vec<u8> {
        let fingerprint = msg.has(attr::FINGERPRINT);
        let answer = Builder::new(msg.method, Class::Error, msg.txid);
        match refused {
            Refused::BadRequest => answer.error(400, "Bad Request"),
            Refused::Unauthorized | Refused::StaleNonce => answer
                .error(
                    refused.code(),
                    if refused == Refused::StaleNonce {
                        "Stale Nonce"
                    } else {
                        "Unauthorized"
                    },
                )
                .attr(attr::REALM, REALM.as_bytes())
                .attr(attr::NONCE, self.nonce(from, now_unix).as_bytes()),
        }
        .finish(None, fingerprint)
    }

    /// A nonce for `ip`: `EXPIRY(hex) . MAC(hex)`, good for `nonce_secs` from `now_unix`.
    pub fn nonce(&self, ip: IpAddr, now_unix: u64) -> String {
        let expiry = now_unix + self.nonce_secs;
        let mac = crate::util::hex::hex(&hmac_sha1(&self.nonce_key, &nonce_input(expiry, ip)));
        format!("{expiry:x}.{mac}")
    }

    /// Whether `nonce` is one of ours for `ip` and has not expired. The MAC is checked in
    /// constant time, so a client cannot learn a valid nonce for an address it does not hold
    /// byte by byte from response times.
    pub fn nonce_ok(&self, nonce: &str, ip: IpAddr, now_unix: u64) -> bool {
        let Some((expiry, mac)) = nonce.split_once('.') else {
            return false;
        };
        let (Ok(expiry), Some(mac)) = (
            u64::from_str_radix(expiry, 16),
            crate::util::hex::unhex(mac),
        ) else {
            return false;
        };
        expiry >= now_unix && hmac_sha1_verify(&self.nonce_key, &nonce_input(expiry, ip), &mac)
    }
}

/// What a nonce's MAC covers: its expiry and the client's address.
fn nonce_input(expiry: u64, ip: IpAddr) -> Vec<u8> {
    let mut input = expiry.to_be_bytes().to_vec();
    match ip.to_canonical() {
        IpAddr::V4(v4) => input.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => input.extend_from_slice(&v6.octets()),
    }
    input
}

/// Answers to requests that carry no valid credential (Binding, 401, 438, 420, 400), per source
/// address: they are a little larger than the request, so unlimited they would amplify a
/// spoofed flood. A burst, then a steady rate; at most `tracked` addresses at once.
pub struct AnswerRate {
    rate: Rate,
    tracked: usize,
    buckets: HashMap<AddrKey, Bucket>,
}

/// Whether a source may get one more answer without a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Allowed,
    /// Past its rate (counted as `stun_answers_limited`).
    Limited,
    /// A new source while the table is full: not answered until the sweep makes room.
    Untracked,
}

impl AnswerRate {
    pub fn new(rate: Rate, tracked: usize) -> AnswerRate {
        AnswerRate {
            rate,
            tracked,
            buckets: HashMap::new(),
        }
    }

    pub fn answer(&mut self, from: IpAddr, now: Instant) -> Answer {
        let key = AddrKey::of(from);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.tracked {
            return Answer::Untracked;
        }
        let rate = self.rate;
        let bucket = self
            .buckets
            .entry(key)
            .or_insert_with(|| Bucket::full(rate, now));
        if bucket.take(rate, now) {
            Answer::Allowed
        } else {
            Answer::Limited
        }
    }

    /// Forgets the sources whose bucket has refilled: they are as new.
    pub fn sweep(&mut self, now: Instant) {
        let rate = self.rate;
        self.buckets.retain(|_, b| !b.is_full(rate, now));
    }

    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW: u64 = 1_700_000_000;
    const SECRET: &[u8] = b"process-secret";

    fn auth() -> Auth {
        Auth::new(SECRET, [7; 32], 600)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The password the server hands seat `seat`'s browser with `username`.
    fn password(username: &str) -> String {
        base64(&hmac_sha1(SECRET, username.as_bytes()))
    }

    /// An Allocate signed with `password` for `username`, carrying `nonce`.
    fn signed(username: &str, password: &str, nonce: &str) -> Vec<u8> {
        let key = codec::long_term_key(username, REALM, password);
        Builder::new(codec::ALLOCATE, Class::Request, [1; 12])
            .attr(attr::USERNAME, username.as_bytes())
            .attr(attr::REALM, REALM.as_bytes())
            .attr(attr::NONCE, nonce.as_bytes())
            .attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
            .finish(Some(&key), true)
    }

    /// The check of an Allocate from 203.1.113.5 at NOW, seat 42 seated.
    fn check(packet: &[u8]) -> Result<Credential, Refused> {
        let msg = Message::parse(packet).unwrap();
        auth().check(&msg, ip("203.1.113.5"), NOW, |seat| seat == SeatId(42))
    }

    fn fresh_nonce() -> String {
        auth().nonce(ip("203.1.113.5"), NOW)
    }

    #[test]
    fn a_current_credential_of_a_seated_seat_passes() {
        let username = format!("{}:42", NOW + 60);
        let got = check(&signed(&username, &password(&username), &fresh_nonce())).unwrap();
        assert_eq!(got.seat, SeatId(42));
        assert_eq!(got.username, username);
        assert_eq!(
            got.key,
            codec::long_term_key(&username, REALM, &password(&username))
        );
    }

    #[test]
    fn a_stale_nonce_gets_438() {
        let username = format!("{}:42", NOW + 60);
        let old = auth().nonce(ip("203.1.113.5"), NOW - 601);
        let packet = signed(&username, &password(&username), &old);
        assert_eq!(check(&packet), Err(Refused::StaleNonce));
        // Good until its expiry, inclusive.
        let edge = auth().nonce(ip("203.1.113.5"), NOW - 600);
        assert!(check(&signed(&username, &password(&username), &edge)).is_ok());
        // And the 438 hands out a fresh nonce that works.
        let msg = Message::parse(&packet).unwrap();
        let answer = auth().refusal(&msg, Refused::StaleNonce, ip("203.1.113.5"), NOW);
        let answer = Message::parse(&answer).unwrap();
        let nonce = answer.text(attr::NONCE).unwrap();
        assert!(auth().nonce_ok(nonce, ip("203.1.113.5"), NOW + 600));
        assert!(!auth().nonce_ok(nonce, ip("203.1.113.5"), NOW + 601));
    }

    #[test]
    fn a_nonce_is_bound_to_its_address_and_its_mac() {
        let username = format!("{}:42", NOW + 60);
        let theirs = auth().nonce(ip("203.1.113.6"), NOW);
        let packet = signed(&username, &password(&username), &theirs);
        assert_eq!(check(&packet), Err(Refused::StaleNonce));
        let (expiry, mac) = fresh_nonce()
            .split_once('.')
            .map(|(e, m)| (e.to_string(), m.to_string()))
            .unwrap();
        let later = u64::from_str_radix(&expiry, 16).unwrap() + 1;
        for forged in [
            format!("{later:x}.{mac}"),
            format!("{expiry}.{}", &mac[..16]),
            format!("{expiry}.{}", "0".repeat(40)),
            "junk".to_string(),
        ] {
            let packet = signed(&username, &password(&username), &forged);
            assert_eq!(check(&packet), Err(Refused::StaleNonce), "{forged}");
        }
        // Another process's nonce key makes other nonces.
        let other = Auth::new(SECRET, [8; 32], 600).nonce(ip("203.1.113.5"), NOW);
        assert!(!auth().nonce_ok(&other, ip("203.1.113.5"), NOW));
    }

    #[test]
    fn an_expired_credential_gets_401() {
        let username = format!("{}:42", NOW - 1);
        let packet = signed(&username, &password(&username), &fresh_nonce());
        assert_eq!(check(&packet), Err(Refused::Unauthorized));
    }

    #[test]
    fn a_credential_of_a_gone_seat_gets_401() {
        let username = format!("{}:43", NOW + 60);
        let packet = signed(&username, &password(&username), &fresh_nonce());
        assert_eq!(check(&packet), Err(Refused::Unauthorized));
    }

    #[test]
    fn a_wrong_password_or_a_username_not_ours_gets_401() {
        let username = format!("{}:42", NOW + 60);
        let nonce = fresh_nonce();
        let wrong = signed(&username, "not-the-password", &nonce);
        assert_eq!(check(&wrong), Err(Refused::Unauthorized));
        let other = format!("{}:41", NOW + 60);
        let swapped = signed(&username, &password(&other), &nonce);
        assert_eq!(check(&swapped), Err(Refused::Unauthorized));
        for name in ["ada", "12:x", ":42"] {
            let packet = signed(name, &password(name), &nonce);
            assert_eq!(check(&packet), Err(Refused::Unauthorized), "{name}");
        }
    }

    #[test]
    fn an_unsigned_request_gets_a_401_challenge() {
        let packet = Builder::new(codec::ALLOCATE, Class::Request, [1; 12]).finish(None, false);
        assert_eq!(check(&packet), Err(Refused::Unauthorized));
        let msg = Message::parse(&packet).unwrap();
        let answer = auth().refusal(&msg, Refused::Unauthorized, ip("203.1.113.5"), NOW);
        let answer = Message::parse(&answer).unwrap();
        assert_eq!(answer.text(attr::REALM), Some(REALM));
        assert!(auth().nonce_ok(answer.text(attr::NONCE).unwrap(), ip("203.1.113.5"), NOW));
    }

    #[test]
    fn a_signed_request_without_username_realm_or_nonce_gets_400() {
        let key = [0u8; 16];
        let packet = Builder::new(codec::ALLOCATE, Class::Request, [1; 12])
            .attr(attr::USERNAME, b"1:42")
            .finish(Some(&key), false);
        assert_eq!(check(&packet), Err(Refused::BadRequest));
        let msg = Message::parse(&packet).unwrap();
        let answer = auth().refusal(&msg, Refused::BadRequest, ip("203.1.113.5"), NOW);
        assert!(!Message::parse(&answer).unwrap().has(attr::NONCE));
    }

    #[test]
    fn unauthenticated_answers_have_a_burst_then_a_rate_per_source() {
        let now = Instant::now();
        let rate = Rate {
            burst: 3.0,
            per_sec: 2.0,
        };
        let mut answers = AnswerRate::new(rate, 100);
        let (a, b) = (ip("203.1.113.5"), ip("203.1.113.6"));
        for _ in 0..3 {
            assert_eq!(answers.answer(a, now), Answer::Allowed);
        }
        assert_eq!(answers.answer(a, now), Answer::Limited);
        assert_eq!(answers.answer(b, now), Answer::Allowed, "another source");
        let later = now + Duration::from_millis(500);
        assert_eq!(answers.answer(a, later), Answer::Allowed);
        assert_eq!(answers.answer(a, later), Answer::Limited);
        // An IPv6 /64 is one source.
        let (c, d) = (ip("2001:4860::1"), ip("2001:4860::2"));
        for _ in 0..3 {
            assert_eq!(answers.answer(c, now), Answer::Allowed);
        }
        assert_eq!(answers.answer(d, now), Answer::Limited);
    }

    #[test]
    fn the_unauthenticated_table_is_bounded_and_swept() {
        let now = Instant::now();
        let rate = Rate {
            burst: 2.0,
            per_sec: 1.0,
        };
        let mut answers = AnswerRate::new(rate, 2);
        assert_eq!(answers.answer(ip("203.1.113.1"), now), Answer::Allowed);
        assert_eq!(answers.answer(ip("203.1.113.2"), now), Answer::Allowed);
        assert_eq!(answers.answer(ip("203.1.113.3"), now), Answer::Untracked);
        assert_eq!(answers.answer(ip("203.1.113.1"), now), Answer::Allowed);
        // Refilled sources are forgotten, and a new one has room again.
        answers.sweep(now + Duration::from_secs(2));
        assert_eq!(answers.tracked(), 0);
        let later = now + Duration::from_secs(2);
        assert_eq!(answers.answer(ip("203.1.113.3"), later), Answer::Allowed);
    }
}
