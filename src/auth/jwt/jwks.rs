//! The identity provider's signing keys: JWKS documents fetched from the configured URLs, kept
//! for `public_key_ttl` and fetched again after it (in the background: requests go on with the
//! keys they have, so a slow provider never holds them), so a key added to the set is accepted and
//! a key removed from it refused after the next fetch. A token whose `kid` is not in the set
//! also brings the next fetch forward (at most once per [`MIN_REFETCH`]), so a freshly
//! rotated-in key works at once. When every URL fails, the keys of the last good fetch stay in
//! use and the fetch is retried after [`RETRY_AFTER_FAILURE`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// Fetches one URL's body (the gateway's outbound HTTP client, given by the state).
pub type Fetch = Arc<dyn Fn(String) -> BoxFuture<'static, Result<Bytes, String>> + Send + Sync>;

/// The least time between two fetches brought forward by unknown `kid`s.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// How soon a failed fetch is tried again while older keys stay in use.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// One signing key.
#[derive(Clone)]
pub struct SigningKey {
    /// `kid`, if the JWK has one.
    pub kid: Option<String>,
    /// The algorithm the JWK is restricted to (`alg`), if any.
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

/// The keys of one fetch.
pub struct KeySet {
    pub keys: Vec<SigningKey>,
    /// When to fetch again.
    stale_at: Instant,
    fetched_at: Instant,
}

impl KeySet {
    /// The key a token's header names: by `kid`, or the only key when the token names none.
    pub fn find(&self, kid: Option<&str>) -> Option<&SigningKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }
}

/// The cached key sets of every configured URL.
pub struct Jwks {
    urls: Vec<String>,
    ttl: Duration,
    fetch: Fetch,
    current: ArcSwapOption<KeySet>,
    /// One fetch at a time; callers that find the set stale while another fetches wait for it.
    refreshing: tokio::sync::Mutex<()>,
    /// A background fetch of stale keys is running.
    background: AtomicBool,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("urls", &self.urls)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Jwks {
    pub fn new(urls: Vec<String>, ttl: Duration, fetch: Fetch) -> Self {
        Self {
            urls,
            ttl,
            fetch,
            current: ArcSwapOption::empty(),
            refreshing: tokio::sync::Mutex::new(()),
            background: AtomicBool::new(false),
        }
    }

    /// The current keys. Stale keys are still answered while one fetch runs in the background
    /// (a slow identity provider never holds requests); only the first fetch is waited for.
    /// `Err` only when no fetch ever succeeded.
    pub async fn keys(self: &Arc<Self>) -> Result<Arc<KeySet>, String> {
        match self.current.load_full() {
            Some(set) if Instant::now() < set.stale_at => Ok(set),
            Some(set) => {
                // one background fetch at a time: the others keep answering the stale set
                if !self.background.swap(true, Ordering::AcqRel) {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let _ = me.refresh(|set| Instant::now() < set.stale_at).await;
                        me.background.store(false, Ordering::Release);
                    });
                }
                Ok(set)
            }
            None => self.refresh(|set| Instant::now() < set.stale_at).await,
        }
    }

    /// The keys after a fetch brought forward because a token named a `kid` the set lacks,
    /// unless the set is younger than [`MIN_REFETCH`].
    pub async fn keys_without(&self, kid: Option<&str>) -> Result<Arc<KeySet>, String> {
        self.refresh(|set| set.find(kid).is_some() || set.fetched_at.elapsed() < MIN_REFETCH)
            .await
    }

    /// Fetch unless `fresh_enough` holds for the set found once the fetch lock is held.
    async fn refresh(&self, fresh_enough: impl Fn(&KeySet) -> bool) -> Result<Arc<KeySet>, String> {
        let _one = self.refreshing.lock().await;
        let old = self.current.load_full();
        if let Some(set) = &old
            && fresh_enough(set)
        {
            return Ok(set.clone());
        }
        match self.fetch_all().await {
            Ok(keys) => {
                let now = Instant::now();
                let set = Arc::new(KeySet {
                    keys,
                    stale_at: now + self.ttl,
                    fetched_at: now,
                });
                self.current.store(Some(set.clone()));
                Ok(set)
            }
            Err(e) => match old {
                Some(set) => {
                    tracing::warn!(error = %e, "cannot fetch the JWT signing keys; the last ones stay in use");
                    let kept = Arc::new(KeySet {
                        keys: set.keys.clone(),
                        stale_at: Instant::now() + RETRY_AFTER_FAILURE,
                        fetched_at: set.fetched_at,
                    });
                    self.current.store(Some(kept.clone()));
                    Ok(kept)
                }
                None => Err(e),
            },
        }
    }

    /// Every URL's keys; an error only when no URL gave any.
    async fn fetch_all(&self) -> Result<Vec<SigningKey>, String> {
        let mut keys = Vec::new();
        let mut errors = Vec::new();
        for url in &self.urls {
            match (self.fetch)(url.clone()).await {
                Ok(body) => match parse_set(&body) {
                    Ok(mut k) => keys.append(&mut k),
                    Err(e) => errors.push(format!("{url}: {e}")),
                },
                Err(e) => errors.push(format!("{url}: {e}")),
            }
        }
        if keys.is_empty() && !errors.is_empty() {
            return Err(errors.join("; "));
        }
        for e in &errors {
            tracing::warn!(error = %e, "a JWKS URL failed; the other URLs' keys are used");
        }
        Ok(keys)
    }
}

/// The signing keys of a JWKS document (`{"keys": [...]}`, or one JWK alone). Keys that are
/// not for signatures, symmetric, or unreadable are left out.
pub fn parse_set(body: &[u8]) -> Result<Vec<SigningKey>, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("not a JWKS document: {e}"))?;
    let entries = match doc.get("keys") {
        Some(Value::Array(keys)) => keys.clone(),
        Some(_) => return Err("`keys` is not a list".into()),
        None if doc.get("kty").is_some() => vec![doc],
        None => return Err("no `keys` in the JWKS document".into()),
    };
    let mut out = Vec::new();
    for entry in entries {
        if entry
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            continue;
        }
        // symmetric keys never verify identity-provider tokens (HS confusion)
        if entry.get("kty").and_then(Value::as_str) == Some("oct") {
            continue;
        }
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        out.push(SigningKey {
            kid: jwk.common.key_id.clone(),
            alg: jwk.common.key_algorithm.and_then(signature_alg),
            key,
        });
    }
    Ok(out)
}

/// The signature algorithm a JWK's `alg` names (encryption algorithms name none).
fn signature_alg(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RSA_JWK: &str = include_str!("../../../tests/fixtures/jwt/rsa_jwk.json");

    #[test]
    fn signing_keys_only() {
        let rsa: Value = serde_json::from_str(RSA_JWK).unwrap();
        let mut enc = rsa.clone();
        enc["use"] = json!("enc");
        enc["kid"] = json!("enc-1");
        let doc = json!({"keys": [
            rsa,
            enc,
            {"kty": "oct", "kid": "hs", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": 5},
            {"kty": "EC", "kid": "no-alg", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        ]});
        let keys = parse_set(doc.to_string().as_bytes()).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(kids, vec!["rsa-1", "no-alg"]);
        assert_eq!(keys[0].alg, Some(Algorithm::RS256));
        assert_eq!(keys[1].alg, None);
        // one JWK alone is a set of one
        let one = parse_set(RSA_JWK.as_bytes()).unwrap();
        assert_eq!(one.len(), 1);
        let set = KeySet {
            keys: one,
            stale_at: Instant::now(),
            fetched_at: Instant::now(),
        };
        assert!(
            set.find(None).is_some(),
            "the only key serves tokens without kid"
        );
        assert!(set.find(Some("rsa-1")).is_some());
        assert!(set.find(Some("other")).is_none());
        for bad in [&b"nope"[..], br#"{"keys": 3}"#, br#"{"a": 1}"#] {
            assert!(parse_set(bad).is_err());
        }
    }

    #[tokio::test]
    async fn keeps_the_last_keys_while_the_provider_fails_and_fetches_again_after_the_ttl() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let fetch: Fetch = Arc::new(move |_| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match n {
                    0 => Ok(Bytes::from_static(RSA_JWK.as_bytes())),
                    _ => Err("down".to_string()),
                }
            })
        });
        let jwks = Arc::new(Jwks::new(
            vec!["http://idp/jwks".into()],
            Duration::from_millis(1),
            fetch,
        ));
        assert_eq!(jwks.keys().await.unwrap().keys.len(), 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
        // stale: answered at once, fetched again in the background, failed, the old keys stay
        assert_eq!(jwks.keys().await.unwrap().keys.len(), 1);
        let refetched = async {
            while calls.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), refetched)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // and the failure is not retried on every call (the kept keys are fresh for 5 s)
        assert_eq!(jwks.keys().await.unwrap().keys.len(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // with no good fetch ever, an error
        let none: Fetch = Arc::new(|_| Box::pin(async { Err("down".to_string()) }));
        let jwks = Arc::new(Jwks::new(
            vec!["http://idp/jwks".into()],
            Duration::from_secs(1),
            none,
        ));
        match jwks.keys().await {
            Err(e) => assert!(e.contains("down"), "{e}"),
            Ok(_) => panic!("keys without a fetch"),
        }
    }
}
