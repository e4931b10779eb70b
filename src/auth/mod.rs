//! Authentication: who is calling.
//!
//! The key is read from the headers LiteLLM reads, in its order. The master key is compared in
//! constant time over sha256 digests (equal length, no early exit). Virtual keys (looked up by
//! sha256 hex in a moka cache in front of Postgres) plug in as another [`Principal`].

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Headers that may carry the caller's key, in lookup order.
const KEY_HEADERS: &[&str] = &[
    "x-tianji-api-key",
    "authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
];

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Presented the master key: proxy admin.
    Master,
    /// No master key is configured: the gateway is open (LiteLLM's behaviour), treated as admin.
    Open,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::Master | Principal::Open)
    }
}

/// Why authentication failed (always 401).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("Authentication Error, No api key passed in.")]
    NoKey,
    #[error("Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.")]
    Malformed,
    #[error("Authentication Error, Invalid API key provided.")]
    Invalid,
}

impl AuthError {
    pub fn error_type(&self) -> &'static str {
        match self {
            AuthError::Invalid => "token_not_found_in_db",
            _ => "auth_error",
        }
    }
    pub fn param(&self) -> Option<&'static str> {
        match self {
            AuthError::Invalid => Some("key"),
            _ => None,
        }
    }
}

/// Checks presented keys.
#[derive(Clone)]
pub struct Authenticator {
    master_digest: Option<[u8; 32]>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("master_key", &self.master_digest.map(|_| "<set>"))
            .finish()
    }
}

/// sha256 of a key.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The raw key from the request headers, if any.
pub fn presented_key(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    for name in KEY_HEADERS {
        let Some(v) = headers.get(*name) else {
            continue;
        };
        let s = v.to_str().map_err(|_| AuthError::Malformed)?.trim();
        if *name == "authorization" {
            let Some((scheme, rest)) = s.split_once(' ') else {
                return Err(AuthError::Malformed);
            };
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::Malformed);
            }
            let key = rest.trim();
            if key.is_empty() {
                return Err(AuthError::NoKey);
            }
            return Ok(Some(key));
        }
        if s.is_empty() {
            continue;
        }
        return Ok(Some(s));
    }
    Ok(None)
}

impl Authenticator {
    pub fn new(master_key: Option<&str>) -> Self {
        Self {
            master_digest: master_key.filter(|k| !k.is_empty()).map(digest),
        }
    }

    pub fn is_open(&self) -> bool {
        self.master_digest.is_none()
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let Some(master) = &self.master_digest else {
            return Ok(Principal::Open);
        };
        let key = presented_key(headers)?.ok_or(AuthError::NoKey)?;
        if bool::from(digest(key).ct_eq(master)) {
            return Ok(Principal::Master);
        }
        Err(AuthError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn reads_keys_from_each_header() {
        let a = Authenticator::new(Some("sk-1234"));
        for hdrs in [
            h(&[("authorization", "Bearer sk-1234")]),
            h(&[("authorization", "bearer sk-1234")]),
            h(&[("api-key", "sk-1234")]),
            h(&[("x-api-key", "sk-1234")]),
            h(&[("x-tianji-api-key", "sk-1234")]),
        ] {
            assert_eq!(a.authenticate(&hdrs), Ok(Principal::Master));
        }
    }

    #[test]
    fn failures() {
        let a = Authenticator::new(Some("sk-1234"));
        assert_eq!(a.authenticate(&h(&[])), Err(AuthError::NoKey));
        assert_eq!(
            a.authenticate(&h(&[("authorization", "sk-1234")])),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            a.authenticate(&h(&[("authorization", "Basic abc")])),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            a.authenticate(&h(&[("authorization", "Bearer sk-wrong")])),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn open_without_master_key() {
        assert_eq!(
            Authenticator::new(None).authenticate(&h(&[])),
            Ok(Principal::Open)
        );
    }
}
