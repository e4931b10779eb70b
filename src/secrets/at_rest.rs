//! Provider credentials encrypted at rest, in LiteLLM's format so values move between the two:
//!
//! - written: `v3:gcm:` + URL-safe base64 (padded) of `nonce(12) ‖ ciphertext ‖ tag(16)`,
//!   AES-256-GCM without associated data, key = HKDF-SHA256(salt: none, info:
//!   `litellm-at-rest-v3`, input: the salt key);
//! - also read: `v2:gcm:` (same layout, key = SHA-256 of the salt key);
//! - a value without either prefix is plaintext (LiteLLM's older unprefixed NaCl SecretBox values
//!   are not read: they are taken as plaintext).
//!
//! The salt key is `TIANJI_SALT_KEY`, else the master key (LiteLLM: `LITELLM_SALT_KEY`, else
//! the master key). Changing it makes stored values unreadable.
//!
//! What is encrypted in a database model's `tianji_params`: every string member except `model`
//! (as LiteLLM encrypts every string of `litellm_params`; `model` stays readable), and every
//! string value of the `headers` and `extra_headers` objects. Numbers, booleans and lists are
//! stored as they are. Reading decrypts every string member that carries a prefix (`model`
//! included), so rows written by either rule read back. Rows found in plain text are encrypted
//! in place at startup ([`encrypt_stored`]).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::store::{Query, Store, StoreError};

/// Prefix of values this gateway writes.
pub const V3_PREFIX: &str = "v3:gcm:";
/// Prefix of LiteLLM's previous AES-GCM values (read only).
pub const V2_PREFIX: &str = "v2:gcm:";
/// HKDF `info` of the v3 key.
const HKDF_INFO: &[u8] = b"litellm-at-rest-v3";
/// AES-GCM tag length.
const TAG_LEN: usize = 16;

/// `tianji_params` members stored in plain text.
const PLAIN_PARAMS: &[&str] = &["model"];
/// `tianji_params` members whose (object) values are all secrets: header maps.
const HEADER_PARAMS: &[&str] = &["headers", "extra_headers"];

/// URL-safe base64, written padded (as Python's `urlsafe_b64encode`), read with or without.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a value could not be encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "tianji_params.{field} is encrypted but no salt key is set (TIANJI_SALT_KEY or the master key)"
    )]
    NoKey { field: String },
    #[error(
        "tianji_params.{field} cannot be decrypted: the salt key (TIANJI_SALT_KEY, else the master key) is not the one it was stored with, or the value is damaged"
    )]
    Undecryptable { field: String },
    #[error("no randomness for an encryption nonce")]
    Random,
    #[error("could not derive the at-rest key")]
    Key,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The at-rest cipher of one salt key.
pub struct AtRest {
    v3: LessSafeKey,
    v2: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for AtRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtRest(..)")
    }
}

/// The v3 key: HKDF-SHA256 (no salt) of the salt key, `info` = `litellm-at-rest-v3`.
fn v3_key(salt_key: &str) -> Result<UnboundKey, SecretError> {
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(salt_key.as_bytes());
    let okm = prk
        .expand(&[HKDF_INFO], &AES_256_GCM)
        .map_err(|_| SecretError::Key)?;
    Ok(UnboundKey::from(okm))
}

/// The v2 key: SHA-256 of the salt key.
fn v2_key(salt_key: &str) -> Result<UnboundKey, SecretError> {
    let digest = Sha256::digest(salt_key.as_bytes());
    UnboundKey::new(&AES_256_GCM, &digest).map_err(|_| SecretError::Key)
}

/// Whether `value` is one of the encrypted formats.
pub fn is_encrypted(value: &str) -> bool {
    value.starts_with(V3_PREFIX) || value.starts_with(V2_PREFIX)
}

impl AtRest {
    pub fn new(salt_key: &str) -> Result<Self, SecretError> {
        Ok(Self {
            v3: LessSafeKey::new(v3_key(salt_key)?),
            v2: LessSafeKey::new(v2_key(salt_key)?),
            rng: SystemRandom::new(),
        })
    }

    /// `plain` as a `v3:gcm:` value (a fresh random nonce each time).
    pub fn encrypt(&self, plain: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SecretError::Random)?;
        self.encrypt_with(plain, nonce)
    }

    fn encrypt_with(&self, plain: &str, nonce: [u8; NONCE_LEN]) -> Result<String, SecretError> {
        let mut blob = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
        blob.extend_from_slice(&nonce);
        let mut sealed = plain.as_bytes().to_vec();
        self.v3
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .map_err(|_| SecretError::Random)?;
        blob.extend_from_slice(&sealed);
        Ok(format!("{V3_PREFIX}{}", B64.encode(blob)))
    }

    /// The plaintext of a `v3:gcm:` or `v2:gcm:` value; `None` when it does not decrypt under
    /// this key (or is damaged). Call only on values for which [`is_encrypted`] holds.
    fn decrypt_prefixed(&self, value: &str) -> Option<String> {
        let (key, rest) = match value.strip_prefix(V3_PREFIX) {
            Some(r) => (&self.v3, r),
            None => (&self.v2, value.strip_prefix(V2_PREFIX)?),
        };
        let mut raw = B64.decode(rest).ok()?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&raw[..NONCE_LEN]).ok()?;
        let plain = key
            .open_in_place(nonce, Aad::empty(), &mut raw[NONCE_LEN..])
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// The plaintext of `value`: decrypted when it carries a prefix, as it is otherwise.
    pub fn decrypt(&self, value: &str, field: &str) -> Result<String, SecretError> {
        if !is_encrypted(value) {
            return Ok(value.to_string());
        }
        self.decrypt_prefixed(value)
            .ok_or_else(|| SecretError::Undecryptable {
                field: field.to_string(),
            })
    }
}

/// Apply `f(field, value)` to every string of `params` that is stored encrypted (with
/// `all_members`, to every string member, `model` included: LiteLLM encrypts that one too);
/// `f` returns the replacement.
fn map_secrets(
    params: &Value,
    all_members: bool,
    mut f: impl FnMut(&str, &str) -> Result<String, SecretError>,
) -> Result<Value, SecretError> {
    let Some(obj) = params.as_object() else {
        return Ok(params.clone());
    };
    let mut out = Map::with_capacity(obj.len());
    for (k, v) in obj {
        let new = match v {
            Value::String(s) if all_members || !PLAIN_PARAMS.contains(&k.as_str()) => {
                Value::String(f(k, s)?)
            }
            Value::Object(headers) if HEADER_PARAMS.contains(&k.as_str()) => {
                let mut h = Map::with_capacity(headers.len());
                for (hk, hv) in headers {
                    let nv = match hv {
                        Value::String(s) => Value::String(f(&format!("{k}.{hk}"), s)?),
                        other => other.clone(),
                    };
                    h.insert(hk.clone(), nv);
                }
                Value::Object(h)
            }
            other => other.clone(),
        };
        out.insert(k.clone(), new);
    }
    Ok(Value::Object(out))
}

/// `params` as stored: its secrets encrypted (values already encrypted are kept). Without a
/// cipher (no salt or master key) they stay as they are.
pub fn seal_params(cipher: Option<&AtRest>, params: &Value) -> Result<Value, SecretError> {
    let Some(c) = cipher else {
        return Ok(params.clone());
    };
    map_secrets(params, false, |_, s| {
        if is_encrypted(s) {
            Ok(s.to_string())
        } else {
            c.encrypt(s)
        }
    })
}

/// `params` as read: every encrypted value decrypted.
pub fn open_params(cipher: Option<&AtRest>, params: &Value) -> Result<Value, SecretError> {
    map_secrets(params, true, |field, s| match cipher {
        Some(c) => c.decrypt(s, field),
        None if is_encrypted(s) => Err(SecretError::NoKey {
            field: field.to_string(),
        }),
        None => Ok(s.to_string()),
    })
}

/// [`open_params`] for display: a value that cannot be decrypted is shown as `********`.
pub fn open_params_lossy(cipher: Option<&AtRest>, params: &Value) -> Value {
    map_secrets(params, true, |field, s| {
        Ok(match cipher.map(|c| c.decrypt(s, field)) {
            Some(Ok(p)) => p,
            None if !is_encrypted(s) => s.to_string(),
            _ => "********".to_string(),
        })
    })
    .unwrap_or_else(|_| params.clone())
}

/// Whether `params` holds a secret not yet encrypted (a row to migrate).
pub fn needs_sealing(params: &Value) -> bool {
    let mut plain = false;
    let _ = map_secrets(params, false, |_, s| {
        plain |= !is_encrypted(s);
        Ok(String::new())
    });
    plain
}

/// Encrypt the credentials of database models still stored in plain text (rows written before
/// encryption, or by hand), in one transaction; idempotent. Returns how many rows changed.
pub async fn encrypt_stored(store: &Store, cipher: &AtRest) -> Result<usize, SecretError> {
    let mut conn = store.conn().await?;
    let [lock, set] = conn.stmts([Query::LockProxyModelParams, Query::SetProxyModelParams])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    let mut changed = 0;
    for row in tx.query(&lock, &[]).await.map_err(StoreError::from)? {
        let id: String = row.try_get(0).map_err(StoreError::from)?;
        let params: Value = row.try_get(1).map_err(StoreError::from)?;
        if !needs_sealing(&params) {
            continue;
        }
        let sealed = seal_params(Some(cipher), &params)?;
        tx.execute(&set, &[&id, &sealed])
            .await
            .map_err(StoreError::from)?;
        changed += 1;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_fresh_nonces() {
        let c = AtRest::new("salt").unwrap();
        let a = c.encrypt("sk-secret").unwrap();
        let b = c.encrypt("sk-secret").unwrap();
        assert!(a.starts_with(V3_PREFIX), "{a}");
        assert_ne!(a, b, "every value gets its own nonce");
        assert!(!a.contains("sk-secret"));
        assert_eq!(c.decrypt(&a, "api_key").unwrap(), "sk-secret");
        assert_eq!(c.decrypt("", "f").unwrap(), "");
        assert_eq!(c.decrypt(&c.encrypt("").unwrap(), "f").unwrap(), "");
        // unprefixed values are plaintext
        assert_eq!(c.decrypt("plain", "f").unwrap(), "plain");
        // another key, or a damaged value, does not decrypt
        let other = AtRest::new("other salt").unwrap();
        assert!(matches!(
            other.decrypt(&a, "api_key"),
            Err(SecretError::Undecryptable { .. })
        ));
        let mut damaged = a.clone();
        damaged.pop();
        damaged.push(if a.ends_with('A') { 'B' } else { 'A' });
        assert!(c.decrypt(&damaged, "f").is_err());
        assert!(c.decrypt("v3:gcm:", "f").is_err());
        assert!(c.decrypt("v3:gcm:!!!", "f").is_err());
    }

    /// Values computed once with Python's `cryptography` (HKDF / AESGCM) the way LiteLLM writes
    /// them: salt key `tianji-kat-salt`, plaintext `sk-kat-provider-key`, nonce 00 01 .. 0b.
    const KAT_V3: &str = "v3:gcm:AAECAwQFBgcICQoLpOnQ-6bKGd1MGbgesAXqcT1No0mVxv2-3KRW0twWxDAyPxY=";
    const KAT_V2: &str = "v2:gcm:AAECAwQFBgcICQoLSHChCH8rxRdscVcBitEcCTRfG5P_4Z3eOFKQyDfSP06HY8g=";

    #[test]
    fn known_answers_of_the_litellm_derivations() {
        let c = AtRest::new("tianji-kat-salt").unwrap();
        assert_eq!(c.decrypt(KAT_V3, "f").unwrap(), "sk-kat-provider-key");
        assert_eq!(c.decrypt(KAT_V2, "f").unwrap(), "sk-kat-provider-key");
        let nonce: [u8; NONCE_LEN] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            c.encrypt_with("sk-kat-provider-key", nonce).unwrap(),
            KAT_V3
        );
        // unpadded base64 reads too
        assert_eq!(
            c.decrypt(KAT_V3.trim_end_matches('='), "f").unwrap(),
            "sk-kat-provider-key"
        );
    }

    #[test]
    fn params_seal_every_string_but_model_and_every_header() {
        let c = AtRest::new("salt").unwrap();
        let params = json!({
            "model": "openai/gpt-4o", "api_key": "sk-1", "api_base": "http://u:p@h/v1",
            "rpm": 5, "tags": ["a"], "extra_headers": {"x-token": "t-1", "n": 1},
            "headers": {"x-other": "t-2"},
        });
        assert!(needs_sealing(&params));
        let sealed = seal_params(Some(&c), &params).unwrap();
        assert_eq!(sealed["model"], "openai/gpt-4o");
        assert_eq!(sealed["rpm"], 5);
        assert_eq!(sealed["tags"], json!(["a"]));
        assert_eq!(sealed["extra_headers"]["n"], 1);
        for v in [
            &sealed["api_key"],
            &sealed["api_base"],
            &sealed["extra_headers"]["x-token"],
            &sealed["headers"]["x-other"],
        ] {
            assert!(v.as_str().unwrap().starts_with(V3_PREFIX), "{v}");
        }
        let text = sealed.to_string();
        for s in ["sk-1", "u:p", "t-1", "t-2"] {
            assert!(!text.contains(s), "{s} in {text}");
        }
        assert!(!needs_sealing(&sealed));
        // sealing again changes nothing
        assert_eq!(seal_params(Some(&c), &sealed).unwrap(), sealed);
        assert_eq!(open_params(Some(&c), &sealed).unwrap(), params);
        // plaintext rows read as they are; encrypted ones need the key
        assert_eq!(open_params(None, &params).unwrap(), params);
        assert!(matches!(
            open_params(None, &sealed),
            Err(SecretError::NoKey { .. })
        ));
        let other = AtRest::new("other").unwrap();
        assert_eq!(
            open_params_lossy(Some(&other), &sealed)["api_key"],
            "********"
        );
        assert_eq!(open_params_lossy(Some(&c), &sealed)["api_key"], "sk-1");
        assert_eq!(seal_params(None, &params).unwrap(), params);
        // a `model` encrypted elsewhere (LiteLLM encrypts every string) reads too
        let mut foreign = sealed.clone();
        foreign["model"] = json!(c.encrypt("openai/gpt-4o").unwrap());
        assert_eq!(open_params(Some(&c), &foreign).unwrap(), params);
    }
}
