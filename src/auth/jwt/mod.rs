//! JWT authentication (`enable_jwt_auth`): bearer tokens signed by the identity provider, as
//! LiteLLM's `JWTHandler` reads them.
//!
//! A token is checked against the provider's JWKS ([`jwks`]): only asymmetric algorithms
//! (RS/PS/ES/EdDSA), the header's algorithm must be the key's when the JWK names one, `exp`
//! required (unless allowed), `nbf`, and `aud` / `iss` when configured. A verified token is
//! remembered by its digest until it expires, as long as its key stays in the set.
//!
//! The claims then name the caller ([`JwtAuth::caller`]): a token carrying the admin scope (or
//! a role mapped to `proxy_admin`) is a proxy admin limited to `admin_allowed_routes`; any
//! other names a team and/or a user that must exist (or are created with `*_upsert`), an
//! organisation, an end user. The caller then goes through the request path as a key of that
//! team and user would: the same budgets, limits and spend attribution. Its key is virtual
//! (no row): a stable id made from the token's issuer and subject, with no limits of its own.

pub mod claims;
pub mod jwks;

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value, json};

use super::{AuthError, Directory, KeyCaller, KeyRecord, UserRecord, UserRole, digest};
use crate::config::jwt::JwtSettings;
use crate::store::{Query, Store};
use crate::util::clock::now_secs;
use crate::util::hex::hex;

pub use jwks::Fetch;

/// The algorithms identity providers sign with; HMAC is never accepted (a public key used as
/// an HMAC secret would let anyone sign).
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// How long a verified token is remembered at most (its expiry comes first).
const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// Whether a presented bearer value is a JWT rather than a key: three dot-separated parts.
pub fn looks_like_jwt(token: &str) -> bool {
    !token.starts_with("sk-") && token.split('.').count() == 3
}

/// A token whose signature and claims were checked.
struct Verified {
    claims: Map<String, Value>,
    kid: Option<String>,
    exp: Option<f64>,
}

/// Checks tokens and maps their claims onto callers.
pub struct JwtAuth {
    settings: JwtSettings,
    jwks: Arc<jwks::Jwks>,
    verified: moka::sync::Cache<[u8; 32], Arc<Verified>>,
    store: Option<Arc<Store>>,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

fn refused(message: impl Into<String>) -> AuthError {
    AuthError::Jwt(message.into())
}

impl JwtAuth {
    /// `fetch` gets the JWKS documents; `store` is where teams and users are found (and
    /// created with the upsert settings).
    pub fn new(settings: &JwtSettings, fetch: Fetch, store: Option<Arc<Store>>) -> Self {
        Self {
            jwks: Arc::new(jwks::Jwks::new(
                settings.key_urls(),
                Duration::from_secs_f64(settings.public_key_ttl.max(0.001)),
                fetch,
            )),
            settings: settings.clone(),
            verified: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(VERIFIED_TTL)
                .build(),
            store,
        }
    }

    /// The caller a token names.
    pub async fn caller(
        &self,
        token: &str,
        dir: Option<&Directory>,
    ) -> Result<KeyCaller, AuthError> {
        let verified = self.verify(token).await?;
        Box::pin(self.map_claims(&verified.claims, dir)).await
    }

    /// Check the token's signature and claims (remembered by digest while valid).
    async fn verify(&self, token: &str) -> Result<Arc<Verified>, AuthError> {
        let d = digest(token);
        if let Some(v) = self.verified.get(&d) {
            if let Some(exp) = v.exp
                && exp + (self.settings.leeway_seconds as f64) < now_secs()
            {
                self.verified.invalidate(&d);
                return Err(refused("the token has expired"));
            }
            let set = self.jwks.keys().await.map_err(AuthError::Unavailable)?;
            if set.find(v.kid.as_deref()).is_some() {
                return Ok(v);
            }
            // its key left the set: checked again below, and refused
            self.verified.invalidate(&d);
        }
        if let Some(alg) = header_alg(token)
            && !ACCEPTED.iter().any(|a| format!("{a:?}") == alg)
        {
            return Err(refused(format!(
                "algorithm '{alg}' is not accepted (tokens must be signed with the identity provider's RS, PS, ES or EdDSA keys)"
            )));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| describe(&e, &self.settings))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(refused(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header.kid.as_deref();
        let set = self.jwks.keys().await.map_err(AuthError::Unavailable)?;
        let key = match set.find(kid) {
            Some(k) => k.clone(),
            None => {
                let set = self
                    .jwks
                    .keys_without(kid)
                    .await
                    .map_err(AuthError::Unavailable)?;
                set.find(kid).cloned().ok_or_else(|| {
                    refused(match kid {
                        Some(kid) => format!(
                            "no signing key with kid '{kid}' in the identity provider's key set"
                        ),
                        None => {
                            "the token names no kid and the key set has more than one key".into()
                        }
                    })
                })?
            }
        };
        if let Some(alg) = key.alg
            && alg != header.alg
        {
            return Err(refused(format!(
                "the token's algorithm {:?} is not its key's ({alg:?})",
                header.alg
            )));
        }
        let claims = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &key.key,
            &self.validation(header.alg),
        )
        .map_err(|e| describe(&e, &self.settings))?
        .claims;
        let exp = claims.get("exp").and_then(Value::as_f64);
        let v = Arc::new(Verified {
            claims,
            kid: header.kid,
            exp,
        });
        self.verified.insert(d, v.clone());
        Ok(v)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let s = &self.settings;
        let mut v = Validation::new(alg);
        v.leeway = s.leeway_seconds;
        v.validate_nbf = true;
        if s.allow_tokens_without_exp {
            v.required_spec_claims.clear();
        }
        match &s.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                v.required_spec_claims.insert("aud".into());
            }
            None => v.validate_aud = false,
        }
        if let Some(iss) = &s.issuer {
            v.set_issuer(&[iss]);
            v.required_spec_claims.insert("iss".into());
        }
        v
    }

    /// The caller the claims name.
    async fn map_claims(
        &self,
        c: &Map<String, Value>,
        dir: Option<&Directory>,
    ) -> Result<KeyCaller, AuthError> {
        let s = &self.settings;
        let user_id = claims::text(c, s.user_id_jwt_field.as_deref());
        let email = claims::text(c, s.user_email_jwt_field.as_deref());
        if let Some(allowed) = &s.user_allowed_roles {
            let roles = claims::list(c, s.user_roles_jwt_field.as_deref());
            if !roles.iter().any(|r| allowed.contains(r)) {
                return Err(AuthError::JwtForbidden(format!(
                    "the token's roles {roles:?} include none of user_allowed_roles {allowed:?}"
                )));
            }
        }
        if let Some(domain) = &s.user_allowed_email_domain {
            let ok = email
                .as_deref()
                .and_then(|e| e.rsplit_once('@'))
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain));
            if !ok {
                return Err(AuthError::JwtForbidden(format!(
                    "only users with an e-mail address at {domain} may call this gateway"
                )));
            }
        }
        let role = self.role_of(c);
        let identity = identity(c, user_id.as_deref());
        if role == Some(UserRole::ProxyAdmin) {
            let user = UserRecord {
                user_id: user_id.clone().unwrap_or_default(),
                user_role: Some(UserRole::ProxyAdmin.name().into()),
                user_email: email,
                ..UserRecord::default()
            };
            return Ok(KeyCaller {
                key: Arc::new(virtual_key(
                    &identity,
                    user_id,
                    None,
                    None,
                    &s.admin_allowed_routes,
                )),
                team: None,
                user: Some(Arc::new(user)),
                member: None,
                org: None,
                end_user: claims::text(c, s.end_user_id_jwt_field.as_deref()),
            });
        }
        let dir = dir.ok_or_else(|| {
            AuthError::Unavailable("JWT callers other than admins need the database".into())
        })?;
        let team = self.team_of(c, dir).await?;
        let mut user = match &user_id {
            Some(u) => Some(self.user(dir, u, email.as_deref()).await?),
            None => None,
        };
        if let Some(r) = role {
            let mut rec = user.as_deref().cloned().unwrap_or_default();
            rec.user_role = Some(r.name().into());
            user = Some(Arc::new(rec));
        }
        if team.is_none() && user.is_none() {
            return Err(refused(
                "the token names no team and no user (see team_id_jwt_field, team_ids_jwt_field, team_id_default and user_id_jwt_field)",
            ));
        }
        let unavailable = |e: Arc<crate::store::StoreError>| AuthError::Unavailable(e.to_string());
        let org_id = claims::text(c, s.org_id_jwt_field.as_deref());
        let org = match org_id
            .as_deref()
            .or_else(|| team.as_ref().and_then(|t| t.organization_id.as_deref()))
        {
            Some(o) => Some(dir.orgs.get(o).await.map_err(unavailable)?.ok_or_else(|| {
                refused(format!(
                    "Organization doesn't exist in db. Organization={o}."
                ))
            })?),
            None => None,
        };
        let member = match (&team, &user_id) {
            (Some(t), Some(u)) => dir.member(&t.team_id, u).await.map_err(unavailable)?,
            _ => None,
        };
        let key = virtual_key(
            &identity,
            user_id,
            team.as_ref().map(|t| t.team_id.clone()),
            org.as_ref().map(|o| o.organization_id.clone()),
            &s.team_allowed_routes,
        );
        Ok(KeyCaller {
            key: Arc::new(key),
            team,
            user,
            member,
            org,
            end_user: claims::text(c, s.end_user_id_jwt_field.as_deref()),
        })
    }

    /// The Tianji role the token grants: proxy admin with the admin scope, else the first
    /// `role_mappings` entry its roles contain.
    fn role_of(&self, c: &Map<String, Value>) -> Option<UserRole> {
        let s = &self.settings;
        if claims::scopes(c).contains(&s.admin_jwt_scope) {
            return Some(UserRole::ProxyAdmin);
        }
        let roles = claims::list(c, s.roles_jwt_field.as_deref());
        s.role_mappings
            .iter()
            .find(|m| roles.contains(&m.role))
            .and_then(|m| UserRole::parse(&m.internal_role))
    }

    /// The team the token names (`team_id_jwt_field`, else the first existing team of
    /// `team_ids_jwt_field`, else `team_id_default`).
    async fn team_of(
        &self,
        c: &Map<String, Value>,
        dir: &Directory,
    ) -> Result<Option<Arc<super::TeamRecord>>, AuthError> {
        let s = &self.settings;
        let unavailable = |e: Arc<crate::store::StoreError>| AuthError::Unavailable(e.to_string());
        let mut named = claims::text(c, s.team_id_jwt_field.as_deref());
        if named.is_none() {
            let ids = claims::list(c, s.team_ids_jwt_field.as_deref());
            for id in &ids {
                if let Some(t) = dir.teams.get(id).await.map_err(unavailable)? {
                    return Ok(Some(t));
                }
            }
            named = ids.into_iter().next();
        }
        let Some(id) = named.or_else(|| s.team_id_default.clone()) else {
            return Ok(None);
        };
        if let Some(t) = dir.teams.get(&id).await.map_err(unavailable)? {
            return Ok(Some(t));
        }
        if !s.team_id_upsert {
            return Err(refused(format!(
                "Team doesn't exist in db. Team={id}. Create team via `/team/new` call."
            )));
        }
        // a team with that id and nothing else (no row: another instance made it first)
        let row = json!({ "team_id": id });
        self.create(Query::InsertTeam, &[&row]).await?;
        dir.teams.invalidate(&id).await;
        dir.teams
            .get(&id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| AuthError::Unavailable(format!("team {id} was not created")))
            .map(Some)
    }

    /// The user `id` (created as an internal user with `user_id_upsert`).
    async fn user(
        &self,
        dir: &Directory,
        id: &str,
        email: Option<&str>,
    ) -> Result<Arc<UserRecord>, AuthError> {
        let unavailable = |e: Arc<crate::store::StoreError>| AuthError::Unavailable(e.to_string());
        if let Some(u) = dir.users.get(id).await.map_err(unavailable)? {
            return Ok(u);
        }
        if !self.settings.user_id_upsert {
            return Err(refused(format!(
                "User doesn't exist in db. 'user_id'={id}. Create user via `/user/new` call."
            )));
        }
        self.create(Query::EnsureUser, &[&id, &email]).await?;
        dir.users.invalidate(id).await;
        dir.users
            .get(id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| AuthError::Unavailable(format!("user {id} was not created")))
    }

    async fn create(
        &self,
        q: Query,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), AuthError> {
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| AuthError::Unavailable("no database".into()))?;
        store
            .query(q, params)
            .await
            .map(drop)
            .map_err(|e| AuthError::Unavailable(e.to_string()))
    }
}

/// The `alg` a token's header names, read before the header is parsed (so `none`, which the
/// parser does not know, is refused by name).
fn header_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let head = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg")?.as_str().map(str::to_string)
}

/// Who the token is, for the virtual key's id: its issuer and subject (else the user id, else
/// the client).
fn identity(c: &Map<String, Value>, user_id: Option<&str>) -> String {
    let iss = claims::text(c, Some("iss")).unwrap_or_default();
    let who = claims::text(c, Some("sub"))
        .or_else(|| user_id.map(str::to_string))
        .or_else(|| claims::text(c, Some("azp")))
        .or_else(|| claims::text(c, Some("client_id")))
        .unwrap_or_default();
    format!("{iss}\n{who}")
}

/// The key a JWT caller acts through: no row, no limits of its own; its id is a digest of the
/// token's identity (stable across tokens, never a usable key).
fn virtual_key(
    identity: &str,
    user_id: Option<String>,
    team_id: Option<String>,
    organization_id: Option<String>,
    routes: &[String],
) -> KeyRecord {
    KeyRecord {
        token: hex(&digest(&format!("tianji-jwt\n{identity}"))),
        user_id,
        team_id,
        organization_id,
        allowed_routes: Some(routes.to_vec()),
        metadata: json!({"tianji_auth": "jwt"}),
        ..KeyRecord::default()
    }
}

/// What a refused token is told.
fn describe(e: &jsonwebtoken::errors::Error, s: &JwtSettings) -> AuthError {
    let message = match e.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".to_string(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_string(),
        ErrorKind::InvalidAudience => format!(
            "the token's audience is not '{}'",
            s.audience.as_deref().unwrap_or_default()
        ),
        ErrorKind::InvalidIssuer => format!(
            "the token's issuer is not '{}'",
            s.issuer.as_deref().unwrap_or_default()
        ),
        ErrorKind::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
        ErrorKind::InvalidSignature => "the token's signature does not verify".to_string(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the token's algorithm is not accepted".to_string()
        }
        _ => format!("the token is malformed ({e})"),
    };
    refused(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_or_key_and_header_alg() {
        assert!(looks_like_jwt("aaa.bbb.ccc"));
        assert!(!looks_like_jwt("sk-a.b.c"));
        assert!(!looks_like_jwt("sk-1234"));
        assert!(!looks_like_jwt("a.b"));
        // {"alg":"none"}
        assert_eq!(
            header_alg("eyJhbGciOiJub25lIn0.e30.").as_deref(),
            Some("none")
        );
        assert_eq!(header_alg("!!.e30."), None);
    }

    #[test]
    fn virtual_keys_are_stable_per_identity_and_carry_the_routes() {
        let c: Map<String, Value> =
            serde_json::from_value(json!({"iss": "https://idp", "sub": "u1"})).unwrap();
        let a = virtual_key(&identity(&c, None), None, None, None, &["r".into()]);
        let b = virtual_key(&identity(&c, Some("other")), None, None, None, &[]);
        assert_eq!(a.token, b.token);
        assert_eq!(a.token.len(), 64);
        assert_eq!(a.allowed_routes, Some(vec!["r".to_string()]));
        let d: Map<String, Value> =
            serde_json::from_value(json!({"iss": "https://idp", "sub": "u2"})).unwrap();
        assert_ne!(
            virtual_key(&identity(&d, None), None, None, None, &[]).token,
            a.token
        );
    }
}
