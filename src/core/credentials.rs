//! TURN credentials in coturn's REST-API scheme (`use-auth-secret` / `static-auth-secret`): the
//! server and the TURN relay share a secret; each join gets a username `EXPIRY:SEAT` (Unix
//! seconds) and the password `base64(HMAC-SHA1(secret, username))`. The relay checks the HMAC
//! and the expiry itself, so the secret never leaves this process and a leaked credential dies
//! on its own.

use serde_json::value::RawValue;

use crate::core::password::hmac_sha1;

/// The TURN part of the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnConfig {
    /// `turn:` / `turns:` URLs handed to browsers, e.g. `turn:turn.example.org:3478`.
    pub urls: Vec<String>,
    pub secret: String,
    /// How long a credential is good for, in seconds.
    pub ttl_secs: u64,
}

impl TurnConfig {
    pub fn enabled(&self) -> bool {
        !self.urls.is_empty() && !self.secret.is_empty()
    }

    /// The username and password for `user` (the seat), valid until `now_unix + ttl`.
    pub fn credential(&self, user: &str, now_unix: u64) -> (String, String) {
        let username = format!("{}:{user}", now_unix + self.ttl_secs);
        let mac = hmac_sha1(self.secret.as_bytes(), username.as_bytes());
        (username, base64(&mac))
    }

    /// `ice_servers` (a JSON array) with one more entry: these URLs with a fresh credential.
    pub fn ice_servers(&self, base: &RawValue, user: &str, now_unix: u64) -> Box<RawValue> {
        let (username, credential) = self.credential(user, now_unix);
        let mut list: Vec<serde_json::Value> = serde_json::from_str(base.get()).unwrap_or_default();
        list.push(serde_json::json!({
            "urls": self.urls,
            "username": username,
            "credential": credential,
        }));
        let text = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
        RawValue::from_string(text)
            .unwrap_or_else(|_| RawValue::from_string("[]".into()).expect("[] is JSON"))
    }
}

/// Standard base64 with padding (RFC 4648), as coturn expects the password.
pub fn base64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn credential_matches_a_fixed_vector() {
        // Computed independently:
        //   python3 -c "import hmac,hashlib,base64;print(base64.b64encode(hmac.new(
        //     b'north-pole-secret', b'1700086400:42', hashlib.sha1).digest()).decode())"
        let turn = TurnConfig {
            urls: vec!["turn:turn.example.org:3478".into()],
            secret: "north-pole-secret".into(),
            ttl_secs: 86_400,
        };
        let (username, password) = turn.credential("42", 1_700_000_000);
        assert_eq!(username, "1700086400:42");
        assert_eq!(password, "DnxyObK4mNBDw7lLjBx7G0h2epM=");
    }

    #[test]
    fn ice_servers_keep_the_configured_ones_and_add_turn() {
        let turn = TurnConfig {
            urls: vec!["turn:t.example:3478".into(), "turns:t.example:5349".into()],
            secret: "s".into(),
            ttl_secs: 60,
        };
        let base = RawValue::from_string(r#"[{"urls":"stun:s.example:3478"}]"#.into()).unwrap();
        let list: serde_json::Value =
            serde_json::from_str(turn.ice_servers(&base, "7", 1000).get()).unwrap();
        assert_eq!(list[0]["urls"], "stun:s.example:3478");
        assert_eq!(list[1]["urls"][1], "turns:t.example:5349");
        assert_eq!(list[1]["username"], "1060:7");
        assert!(list[1]["credential"].as_str().unwrap().ends_with('='));
        assert!(
            !list.to_string().contains("\"s\""),
            "the secret is not sent"
        );
        assert!(!TurnConfig::default().enabled());
    }
}
