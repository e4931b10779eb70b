//! Response-ID security: the ids of Responses API objects handed to clients are sealed with
//! their owner (user and team) and the deployment that holds them, AES-256-GCM under
//! SHA-256(salt key, else master key), the nonce an HMAC of the plaintext (so an object keeps
//! one id): `resp_v2:gcm:<urlsafe base64 of nonce ‖ ciphertext ‖ tag>`
//! (the reference's `aes-256-gcm` format). Only the owner, or an admin, can use such an id
//! again; ids the gateway did not issue are refused unless allowed by configuration.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
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
    /// Derives each nonce from the plaintext (synthetic IV): one object always gets the same
    /// id, and different plaintexts never share a nonce.
    nonces: hmac::Key,
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
        let nonce_key =
            Sha256::digest([b"tianji-id-nonce:".as_slice(), secret.as_bytes()].concat());
        Some(Self {
            key: LessSafeKey::new(key),
            nonces: hmac::Key::new(hmac::HMAC_SHA256, &nonce_key),
        })
    }

    /// The id to give the client for `o`.
    pub fn seal(&self, o: &Owned) -> Option<String> {
        self.seal_as(PREFIX, PLAIN, o)
    }

    /// What a sealed id says; `None` when the gateway did not issue it.
    pub fn open(&self, id: &str) -> Option<Owned> {
        self.open_as(PREFIX, PLAIN, id)
    }

    /// `o` sealed as `{prefix}v2:gcm:...`, the plaintext starting with `tag` (one per kind of
    /// object, so an id of one kind never opens as another).
    pub fn seal_as(&self, prefix: &str, tag: &str, o: &Owned) -> Option<String> {
        let mut buf = format!(
            "{tag}{};user_id:{};team_id:{};model_id:{}",
            o.raw, o.user_id, o.team_id, o.model_id
        )
        .into_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&hmac::sign(&self.nonces, &buf).as_ref()[..NONCE_LEN]);
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .ok()?;
        let mut all = nonce.to_vec();
        all.extend_from_slice(&buf);
        Some(format!("{prefix}{SEALED}{}", URL_SAFE.encode(all)))
    }

    /// What an id sealed by [`Sealer::seal_as`] with `prefix` and `tag` says.
    pub fn open_as(&self, prefix: &str, tag: &str, id: &str) -> Option<Owned> {
        let b64 = id.strip_prefix(prefix)?.strip_prefix(SEALED)?;
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
        let body = text.strip_prefix(tag)?;
        let (body, model_id) = body.rsplit_once(";model_id:")?;
        let (body, team_id) = body.rsplit_once(";team_id:")?;
        let (raw, user_id) = body.rsplit_once(";user_id:")?;
        Some(Owned {
            raw: raw.to_string(),
            user_id: user_id.to_string(),
            team_id: team_id.to_string(),
            model_id: model_id.to_string(),
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
