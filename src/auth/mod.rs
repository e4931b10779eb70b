//! Authentication: who is calling; authorization of what they ask for lives in [`access`].
//!
//! The key is read from the headers LiteLLM reads, in its order. The master key is compared in
//! constant time over sha256 digests (equal length, no early exit). Virtual keys (looked up by
//! sha256 hex in a moka cache in front of Postgres) plug in as another [`Principal`].

pub mod access;
pub mod budget;
pub mod cache;
pub mod invalidation;
pub mod jwt;
mod keys;
pub mod owner;
pub mod records;

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use cache::{Changed, Directory};
pub use keys::KeyRecord;
pub use owner::Owner;
pub use records::{EndUserRecord, MembershipRecord, OrgRecord, TeamRecord, UserRecord};

use crate::store::Store;
use crate::util::clock::{fmt_utc, now_secs};
use crate::util::hex::hex;

/// Headers that may carry the caller's key, in lookup order (names, not strings: a lookup by
/// string parses the name first).
static KEY_HEADERS: [http::HeaderName; 6] = [
    http::HeaderName::from_static("x-tianji-api-key"),
    http::header::AUTHORIZATION,
    http::HeaderName::from_static("api-key"),
    http::HeaderName::from_static("x-api-key"),
    http::HeaderName::from_static("x-goog-api-key"),
    http::HeaderName::from_static("ocp-apim-subscription-key"),
];

/// The authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Presented the master key: proxy admin.
    Master,
    /// No master key is configured: the gateway is open (LiteLLM's behaviour), treated as admin.
    Open,
    /// A virtual key from the database, with its team and user.
    Key(KeyCaller),
}

/// A virtual key and what it belongs to.
#[derive(Debug, Clone)]
pub struct KeyCaller {
    pub key: Arc<KeyRecord>,
    pub team: Option<Arc<TeamRecord>>,
    pub user: Option<Arc<UserRecord>>,
    /// The user's membership of the key's team.
    pub member: Option<Arc<MembershipRecord>>,
    /// The key's organisation (or its team's).
    pub org: Option<Arc<OrgRecord>>,
    /// The end user a JWT names (`end_user_id_jwt_field`); keys name none.
    pub end_user: Option<String>,
}

/// A user's role (`TianjiLLM_UserTable.user_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRole {
    ProxyAdmin,
    /// Reads everything, changes nothing.
    ProxyAdminViewer,
    InternalUser,
    InternalUserViewer,
}

impl UserRole {
    pub const NAMES: &'static [&'static str] = crate::config::USER_ROLES;

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "proxy_admin" => UserRole::ProxyAdmin,
            "proxy_admin_viewer" => UserRole::ProxyAdminViewer,
            "internal_user" => UserRole::InternalUser,
            "internal_user_viewer" => UserRole::InternalUserViewer,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            UserRole::ProxyAdmin => "proxy_admin",
            UserRole::ProxyAdminViewer => "proxy_admin_viewer",
            UserRole::InternalUser => "internal_user",
            UserRole::InternalUserViewer => "internal_user_viewer",
        }
    }

    /// Privilege order: proxy admin > admin viewer > internal user > internal viewer.
    fn rank(self) -> u8 {
        match self {
            UserRole::ProxyAdmin => 3,
            UserRole::ProxyAdminViewer => 2,
            UserRole::InternalUser => 1,
            UserRole::InternalUserViewer => 0,
        }
    }

    /// Whether this role has more privilege than `other`.
    pub fn above(self, other: UserRole) -> bool {
        self.rank() > other.rank()
    }

    /// The lower of two roles.
    pub fn min(self, other: UserRole) -> UserRole {
        if self.above(other) { other } else { self }
    }

    /// The role a key acts with: its user's role (internal user without one), no higher than
    /// the grant its creator recorded in the key's metadata ([`ROLE_CAP`]).
    pub fn of_key(user_role: Option<&str>, key_metadata: &serde_json::Value) -> UserRole {
        let role = user_role
            .and_then(UserRole::parse)
            .unwrap_or(UserRole::InternalUser);
        match key_metadata
            .get(ROLE_CAP)
            .and_then(serde_json::Value::as_str)
        {
            // An unreadable cap grants the least.
            Some(cap) => role.min(UserRole::parse(cap).unwrap_or(UserRole::InternalUserViewer)),
            None => role,
        }
    }
}

/// Key metadata member holding the highest role the key may act with: the role of a
/// non-admin creator, recorded at `/key/generate` and kept by every later update.
pub const ROLE_CAP: &str = "tianji_role_cap";

impl Principal {
    pub fn role(&self) -> UserRole {
        match self {
            Principal::Master | Principal::Open => UserRole::ProxyAdmin,
            Principal::Key(k) => UserRole::of_key(
                k.user.as_ref().and_then(|u| u.user_role.as_deref()),
                &k.key.metadata,
            ),
        }
    }

    /// Master key, open gateway, or a key of a `proxy_admin` user.
    pub fn is_admin(&self) -> bool {
        self.role() == UserRole::ProxyAdmin
    }

    /// Admins and `proxy_admin_viewer`s may read everything.
    pub fn can_read_all(&self) -> bool {
        matches!(
            self.role(),
            UserRole::ProxyAdmin | UserRole::ProxyAdminViewer
        )
    }

    /// The virtual key, if the caller used one.
    pub fn key(&self) -> Option<&KeyCaller> {
        match self {
            Principal::Key(k) => Some(k),
            _ => None,
        }
    }

    /// The caller's user id (from its key).
    pub fn user_id(&self) -> Option<&str> {
        self.key().and_then(|k| k.key.user_id.as_deref())
    }
}

/// Why a caller was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("Authentication Error, No api key passed in.")]
    NoKey,
    #[error("Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.")]
    Malformed,
    #[error("Authentication Error, Invalid API key provided.")]
    Invalid,
    #[error("Authentication Error - Expired Key. Key Expiry time {expiry} and current time {now}")]
    Expired { expiry: String, now: String },
    #[error("Authentication Error - Key is blocked. Update via `/key/unblock` if you're admin.")]
    Blocked,
    #[error(
        "The requested model '{model}' is not available for this API key, or the model name is invalid. Check the models available to you and try again."
    )]
    ModelDenied {
        model: String,
        /// `key_model_access_denied`, `team_model_access_denied`, ...
        kind: &'static str,
    },
    #[error("Team={0} is blocked. Update via `/team/unblock` if you're admin.")]
    TeamBlocked(String),
    #[error("End User={0} is blocked. Update via `/end_user/unblock` if you're admin.")]
    EndUserBlocked(String),
    #[error("Route {route} is not allowed for this key. Allowed routes: {allowed:?}")]
    RouteDenied { route: String, allowed: Vec<String> },
    #[error("{message}")]
    BudgetExceeded { message: String, status: u16 },
    #[error("Not allowed to set {0} as a cache control. Contact admin to change permissions.")]
    CacheControlDenied(String),
    /// A JWT that is not accepted (signature, expiry, audience, issuer, unknown team or user).
    #[error("Authentication Error, JWT refused: {0}")]
    Jwt(String),
    /// A valid JWT whose roles or e-mail domain are not let in.
    #[error("Authentication Error, JWT not allowed: {0}")]
    JwtForbidden(String),
    #[error("Authentication Error, the key store is unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Blocked
            | AuthError::ModelDenied { .. }
            | AuthError::TeamBlocked(_)
            | AuthError::EndUserBlocked(_)
            | AuthError::RouteDenied { .. }
            | AuthError::CacheControlDenied(_)
            | AuthError::JwtForbidden(_) => StatusCode::FORBIDDEN,
            AuthError::BudgetExceeded { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::TOO_MANY_REQUESTS)
            }
            AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
    pub fn error_type(&self) -> &'static str {
        match self {
            AuthError::Invalid => "token_not_found_in_db",
            AuthError::Expired { .. } => "expired_key",
            AuthError::ModelDenied { kind, .. } => kind,
            AuthError::BudgetExceeded { .. } => "budget_exceeded",
            AuthError::TeamBlocked(_) | AuthError::EndUserBlocked(_) => "permission_error",
            AuthError::RouteDenied { .. }
            | AuthError::CacheControlDenied(_)
            | AuthError::JwtForbidden(_) => "permission_error",
            AuthError::Unavailable(_) => "auth_provider_unavailable",
            _ => "auth_error",
        }
    }
    pub fn param(&self) -> Option<&'static str> {
        match self {
            AuthError::Invalid => Some("key"),
            AuthError::ModelDenied { .. } => Some("model"),
            _ => None,
        }
    }
}

/// sha256 hex, as keys are stored.
pub fn token_hex(key: &str) -> String {
    hex(&digest(key))
}

/// Checks presented keys.
pub struct Authenticator {
    master_digest: Option<[u8; 32]>,
    /// sha256 hex of the master key (what spend logs record as its `api_key`).
    master_hash: Option<Arc<str>>,
    directory: Option<Directory>,
    /// Identity-provider tokens, when `enable_jwt_auth` is on.
    jwt: Option<jwt::JwtAuth>,
    /// HTTP status of `budget_exceeded` errors.
    pub budget_status: u16,
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
    for name in &KEY_HEADERS {
        let Some(v) = headers.get(name) else {
            continue;
        };
        let s = v.to_str().map_err(|_| AuthError::Malformed)?.trim();
        if name == http::header::AUTHORIZATION {
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
    /// Master key only; virtual keys need a store.
    pub fn new(master_key: Option<&str>) -> Self {
        Self::with_store(master_key, None)
    }

    pub fn with_store(master_key: Option<&str>, store: Option<Arc<Store>>) -> Self {
        Self {
            master_digest: master_key.filter(|k| !k.is_empty()).map(digest),
            master_hash: master_key
                .filter(|k| !k.is_empty())
                .map(|k| Arc::from(hex(&digest(k)))),
            directory: store.map(Directory::new),
            jwt: None,
            budget_status: 429,
        }
    }

    /// Accept identity-provider JWTs too.
    pub fn with_jwt(mut self, jwt: jwt::JwtAuth) -> Self {
        self.jwt = Some(jwt);
        self
    }

    /// sha256 hex of the master key, when one is set.
    pub fn master_hash(&self) -> Option<&Arc<str>> {
        self.master_hash.as_ref()
    }

    pub fn is_open(&self) -> bool {
        self.master_digest.is_none()
    }

    /// The governance caches (management writes invalidate through them).
    pub fn directory(&self) -> Option<&Directory> {
        self.directory.as_ref()
    }

    /// Authenticate the caller of `req` and check its `allowed_routes` cover the path.
    pub async fn caller_of<B>(&self, req: &http::Request<B>) -> Result<Principal, AuthError> {
        let principal = self.authenticate(req.headers()).await?;
        access::check_route(&principal, req.uri().path())?;
        Ok(principal)
    }

    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let Some(master) = &self.master_digest else {
            return Ok(Principal::Open);
        };
        let key = presented_key(headers)?.ok_or(AuthError::NoKey)?;
        let d = digest(key);
        if bool::from(d.ct_eq(master)) {
            return Ok(Principal::Master);
        }
        if let Some(j) = &self.jwt
            && jwt::looks_like_jwt(key)
        {
            return Box::pin(j.caller(key, self.directory.as_ref()))
                .await
                .map(Principal::Key);
        }
        let Some(dir) = &self.directory else {
            return Err(AuthError::Invalid);
        };
        let token = hex(&d);
        let caller = match dir.bundle(&token).await {
            Some(b) => b.caller.clone(),
            // boxed: a cached key's request does not carry (or copy) the loading's state
            None => Box::pin(load_and_remember(dir, &token)).await?,
        };
        let rec = &caller.key;
        if rec.blocked == Some(true) {
            return Err(AuthError::Blocked);
        }
        if let Some(exp) = rec.expires_epoch {
            let now = now_secs();
            if exp < now {
                return Err(AuthError::Expired {
                    expiry: fmt_utc(exp),
                    now: fmt_utc(now),
                });
            }
        }
        Ok(Principal::Key(caller))
    }
}

/// The key `token` as [`load_caller`] finds it, remembered for the next requests.
async fn load_and_remember(dir: &Directory, token: &str) -> Result<KeyCaller, AuthError> {
    let generation = dir.generation();
    let caller = load_caller(dir, token).await?;
    dir.remember(token, generation, caller.clone()).await;
    Ok(caller)
}

/// The key `token` with its team, user, membership and organisation, from the per-kind caches.
async fn load_caller(dir: &Directory, token: &str) -> Result<KeyCaller, AuthError> {
    let unavailable = |e: Arc<crate::store::StoreError>| AuthError::Unavailable(e.to_string());
    let key = dir
        .keys
        .get(token)
        .await
        .map_err(unavailable)?
        .ok_or(AuthError::Invalid)?;
    let team = match key.team_id.as_deref() {
        Some(t) => dir.teams.get(t).await.map_err(unavailable)?,
        None => None,
    };
    let user = match key.user_id.as_deref() {
        Some(u) => dir.users.get(u).await.map_err(unavailable)?,
        None => None,
    };
    let member = match (key.team_id.as_deref(), key.user_id.as_deref()) {
        (Some(t), Some(u)) if team.is_some() => dir.member(t, u).await.map_err(unavailable)?,
        _ => None,
    };
    let org_id = key
        .organization_id
        .as_deref()
        .or_else(|| team.as_ref().and_then(|t| t.organization_id.as_deref()));
    let org = match org_id {
        Some(o) => dir.orgs.get(o).await.map_err(unavailable)?,
        None => None,
    };
    Ok(KeyCaller {
        key,
        team,
        user,
        member,
        org,
        end_user: None,
    })
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

    #[tokio::test]
    async fn reads_keys_from_each_header() {
        let a = Authenticator::new(Some("sk-1234"));
        for hdrs in [
            h(&[("authorization", "Bearer sk-1234")]),
            h(&[("authorization", "bearer sk-1234")]),
            h(&[("api-key", "sk-1234")]),
            h(&[("x-api-key", "sk-1234")]),
            h(&[("x-tianji-api-key", "sk-1234")]),
        ] {
            assert!(matches!(a.authenticate(&hdrs).await, Ok(Principal::Master)));
        }
    }

    #[tokio::test]
    async fn failures() {
        let a = Authenticator::new(Some("sk-1234"));
        let err = |r: Result<Principal, AuthError>| r.err().unwrap();
        assert_eq!(err(a.authenticate(&h(&[])).await), AuthError::NoKey);
        assert_eq!(
            err(a.authenticate(&h(&[("authorization", "sk-1234")])).await),
            AuthError::Malformed
        );
        assert_eq!(
            err(a.authenticate(&h(&[("authorization", "Basic abc")])).await),
            AuthError::Malformed
        );
        assert_eq!(
            err(a
                .authenticate(&h(&[("authorization", "Bearer sk-wrong")]))
                .await),
            AuthError::Invalid
        );
    }

    #[tokio::test]
    async fn open_without_master_key() {
        assert!(matches!(
            Authenticator::new(None).authenticate(&h(&[])).await,
            Ok(Principal::Open)
        ));
    }

    #[test]
    fn utc_formatting_and_token_hex() {
        assert_eq!(fmt_utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(fmt_utc(1_795_321_004.5), "2026-11-22 04:16:44");
        assert_eq!(
            token_hex("sk-1234"),
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
    }
}
