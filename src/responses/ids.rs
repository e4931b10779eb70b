//! Response-ID security: the ids of Responses API objects handed to clients are sealed with
//! their owner (user and team) and the deployment that holds them, AES-256-GCM under
//! SHA-256(salt key, else master key): `resp_v2:gcm:<urlsafe base64 of nonce ‖ ciphertext ‖ tag>`
//! (the reference's `aes-256-gcm` format). Only the owner, or an admin, can use such an id
//! again; ids the gateway did not issue are refused unless allowed by configuration.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

const PREFIX: &str = "resp_";
const SEALED: &str = "v2:gcm:";
const PLAIN: &str = "tianji_proxy:responses_api:response_id:";

/// What a sealed id says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The provider's id.
    pub raw: String,
    pub user_id: String,
    pub team_id: String,
    /// The deployment that created it.
    pub model_id: String,
}

pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// From the salt key, else the master key.
    pub fn new(secret: &str) -> Option<Self> {
        let digest = Sha256::digest(secret.as_bytes());
        let key = UnboundKey::new(&AES_256_GCM, &digest).ok()?;
        Some(Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// The id to give the client for `o`.
    pub fn seal(&self, o: &Owned) -> Option<String> {
        let mut buf = format!(
            "{PLAIN}{};user_id:{};team_id:{};model_id:{}",
            o.raw, o.user_id, o.team_id, o.model_id
        )
        .into_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .ok()?;
        let mut all = nonce.to_vec();
        all.extend_from_slice(&buf);
        Some(format!("{PREFIX}{SEALED}{}", URL_SAFE.encode(all)))
    }

    /// What a sealed id says; `None` when the gateway did not issue it.
    pub fn open(&self, id: &str) -> Option<Owned> {
        let b64 = id.strip_prefix(PREFIX)?.strip_prefix(SEALED)?;
        let all = URL_SAFE.decode(b64).ok()?;
        if all.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, rest) = all.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut rest = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut rest)
            .ok()?;
        let text = std::str::from_utf8(plain).ok()?;
        let body = text.strip_prefix(PLAIN)?;
        let mut parts = body.split(';');
        let raw = parts.next()?.to_string();
        let mut field =
            |name: &str| -> Option<String> { parts.next()?.strip_prefix(name).map(str::to_string) };
        Some(Owned {
            raw,
            user_id: field("user_id:")?,
            team_id: field("team_id:")?,
            model_id: field("model_id:")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let s = Sealer::new("sk-master").unwrap();
        let o = Owned {
            raw: "resp_abc".into(),
            user_id: "u1".into(),
            team_id: "".into(),
            model_id: "m1".into(),
        };
        let id = s.seal(&o).unwrap();
        assert!(id.starts_with("resp_v2:gcm:"), "{id}");
        assert_eq!(s.open(&id), Some(o));
        // another secret cannot read it; tampering is detected; plain ids are not ours
        assert!(Sealer::new("other").unwrap().open(&id).is_none());
        let mut bad = id.clone();
        bad.replace_range(20..21, if &id[20..21] == "A" { "B" } else { "A" });
        assert!(s.open(&bad).is_none());
        assert!(s.open("resp_abc").is_none());
    }
}
