//! JWT authentication settings (`general_settings.enable_jwt_auth`,
//! `general_settings.tianji_jwtauth`), LiteLLM's `litellm_jwtauth` renamed.

use serde::Deserialize;

use super::{ConfigError, Env};

/// Where the signing keys come from, when `public_key_url` is not set: JWKS URLs, comma
/// separated.
pub const ENV_PUBLIC_KEY_URL: &str = "JWT_PUBLIC_KEY_URL";
/// The audience tokens must name, when `audience` is not set.
pub const ENV_AUDIENCE: &str = "JWT_AUDIENCE";
/// The issuer tokens must name, when `issuer` is not set.
pub const ENV_ISSUER: &str = "JWT_ISSUER";

/// How identity-provider tokens map onto Tianji's admins, teams, users and end users.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JwtSettings {
    /// JWKS URLs (comma separated), else `JWT_PUBLIC_KEY_URL`.
    pub public_key_url: Option<String>,
    /// Seconds the signing keys are kept before they are fetched again (default 600): a key
    /// added to the set is accepted, and a key removed from it refused, after the next fetch.
    pub public_key_ttl: f64,
    /// The `aud` tokens must carry (else `JWT_AUDIENCE`; unset: not checked).
    pub audience: Option<String>,
    /// The `iss` tokens must carry (else `JWT_ISSUER`; unset: not checked).
    pub issuer: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf` (default 0).
    pub leeway_seconds: u64,
    /// A token without `exp` is refused unless this is set (default false).
    pub allow_tokens_without_exp: bool,
    /// The scope (in the space-separated `scope` claim, or the `scp` list) that makes the
    /// caller a proxy admin.
    pub admin_jwt_scope: String,
    /// Routes (route groups or paths) an admin token may call.
    pub admin_allowed_routes: Vec<String>,
    /// Claim (dotted path) holding the caller's team id.
    pub team_id_jwt_field: Option<String>,
    /// Claim holding a list of team ids: the first that exists is the caller's team.
    pub team_ids_jwt_field: Option<String>,
    /// Team used when the token names none.
    pub team_id_default: Option<String>,
    /// Create a team the token names that does not exist yet (default false: refused).
    pub team_id_upsert: bool,
    /// Routes a non-admin token may call.
    pub team_allowed_routes: Vec<String>,
    /// Claim holding the caller's organisation id (the organisation must exist).
    pub org_id_jwt_field: Option<String>,
    /// Claim holding the caller's user id.
    pub user_id_jwt_field: Option<String>,
    /// Claim holding the user's e-mail (recorded when the user is created).
    pub user_email_jwt_field: Option<String>,
    /// Only users whose e-mail ends with `@` this domain are let in.
    pub user_allowed_email_domain: Option<String>,
    /// Create a user the token names that does not exist yet (default false: refused).
    pub user_id_upsert: bool,
    /// Claim holding the user's identity-provider roles, checked against `user_allowed_roles`.
    pub user_roles_jwt_field: Option<String>,
    /// Identity-provider roles allowed in (unset: any).
    pub user_allowed_roles: Option<Vec<String>>,
    /// Claim holding the end user the request is for (its budget and spend apply).
    pub end_user_id_jwt_field: Option<String>,
    /// Claim holding identity-provider roles that `role_mappings` turn into Tianji roles.
    pub roles_jwt_field: Option<String>,
    /// Identity-provider role -> Tianji role; the first mapping the token's roles contain
    /// applies.
    pub role_mappings: Vec<RoleMapping>,
}

/// One identity-provider role and the Tianji role it grants.
#[derive(Debug, Clone, Deserialize)]
pub struct RoleMapping {
    pub role: String,
    /// `proxy_admin`, `proxy_admin_viewer`, `internal_user` or `internal_user_viewer`.
    pub internal_role: String,
}

impl Default for JwtSettings {
    fn default() -> Self {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect();
        JwtSettings {
            public_key_url: None,
            public_key_ttl: 600.0,
            audience: None,
            issuer: None,
            leeway_seconds: 0,
            allow_tokens_without_exp: false,
            admin_jwt_scope: "tianji_proxy_admin".into(),
            admin_allowed_routes: owned(&[
                "management_routes",
                "spend_tracking_routes",
                "global_spend_tracking_routes",
                "info_routes",
            ]),
            team_id_jwt_field: None,
            team_ids_jwt_field: None,
            team_id_default: None,
            team_id_upsert: false,
            team_allowed_routes: owned(&["openai_routes", "info_routes"]),
            org_id_jwt_field: None,
            user_id_jwt_field: None,
            user_email_jwt_field: None,
            user_allowed_email_domain: None,
            user_id_upsert: false,
            user_roles_jwt_field: None,
            user_allowed_roles: None,
            end_user_id_jwt_field: None,
            roles_jwt_field: None,
            role_mappings: Vec::new(),
        }
    }
}

impl JwtSettings {
    /// Fill what the config leaves unset from the environment.
    pub fn resolve_env(&mut self, env: &Env) {
        let var = |n: &str| env.get(n).filter(|v| !v.trim().is_empty());
        if self.public_key_url.is_none() {
            self.public_key_url = var(ENV_PUBLIC_KEY_URL);
        }
        if self.audience.is_none() {
            self.audience = var(ENV_AUDIENCE);
        }
        if self.issuer.is_none() {
            self.issuer = var(ENV_ISSUER);
        }
    }

    /// The JWKS URLs.
    pub fn key_urls(&self) -> Vec<String> {
        self.public_key_url
            .iter()
            .flat_map(|u| u.split(','))
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Checked when `enable_jwt_auth` is on.
    pub fn validate(&self, has_master_key: bool) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: format!("general_settings.tianji_jwtauth.{field}"),
            message,
        };
        if !has_master_key {
            return Err(ConfigError::Invalid {
                path: "general_settings.enable_jwt_auth".into(),
                message: "JWT authentication needs a master_key (without one every route is open)"
                    .into(),
            });
        }
        let urls = self.key_urls();
        if urls.is_empty() {
            return Err(invalid(
                "public_key_url",
                format!(
                    "JWT authentication needs the identity provider's JWKS URL: set it or {ENV_PUBLIC_KEY_URL}"
                ),
            ));
        }
        for u in &urls {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(invalid(
                    "public_key_url",
                    format!("'{u}' is not an http(s) URL"),
                ));
            }
        }
        if !(self.public_key_ttl.is_finite() && self.public_key_ttl > 0.0) {
            return Err(invalid(
                "public_key_ttl",
                format!(
                    "must be a positive number of seconds, got {}",
                    self.public_key_ttl
                ),
            ));
        }
        for (i, m) in self.role_mappings.iter().enumerate() {
            if !super::USER_ROLES.contains(&m.internal_role.as_str()) {
                return Err(invalid(
                    &format!("role_mappings[{i}].internal_role"),
                    format!(
                        "unknown role '{}' (one of {})",
                        m.internal_role,
                        super::USER_ROLES.join(", ")
                    ),
                ));
            }
        }
        if self.role_mappings.is_empty() != self.roles_jwt_field.is_none() {
            return Err(invalid(
                "role_mappings",
                "roles_jwt_field and role_mappings go together".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, Loaded};

    fn load(extra: &str) -> Result<Loaded, ConfigError> {
        Loaded::from_yaml(&format!(
            "general_settings:\n  master_key: sk-1\n  enable_jwt_auth: true\n{extra}"
        ))
    }

    fn path_of(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { path, .. } => path,
            e => panic!("{e}"),
        }
    }

    #[test]
    fn settings_defaults_and_errors() {
        let l = load("  tianji_jwtauth:\n    public_key_url: \"https://a.test/jwks, https://b.test/jwks\"\n    team_id_jwt_field: groups.team\n").unwrap();
        let j = &l.config.general_settings.tianji_jwtauth;
        assert_eq!(
            j.key_urls(),
            vec!["https://a.test/jwks", "https://b.test/jwks"]
        );
        assert_eq!(j.public_key_ttl, 600.0);
        assert_eq!(j.admin_jwt_scope, "tianji_proxy_admin");
        assert_eq!(j.team_allowed_routes, vec!["openai_routes", "info_routes"]);
        // LiteLLM's name for the section
        let l = load("  litellm_jwtauth:\n    public_key_url: https://a.test/jwks\n    user_id_jwt_field: email\n").unwrap();
        assert_eq!(
            l.config
                .general_settings
                .tianji_jwtauth
                .user_id_jwt_field
                .as_deref(),
            Some("email")
        );
        // the URL from the environment section
        let l = Loaded::from_yaml("environment_variables:\n  JWT_PUBLIC_KEY_URL: https://c.test/jwks\n  JWT_AUDIENCE: api\ngeneral_settings:\n  master_key: sk-1\n  enable_jwt_auth: true\n").unwrap();
        let j = &l.config.general_settings.tianji_jwtauth;
        assert_eq!(j.key_urls(), vec!["https://c.test/jwks"]);
        assert_eq!(j.audience.as_deref(), Some("api"));

        for (extra, path) in [
            ("", "general_settings.tianji_jwtauth.public_key_url"),
            (
                "  tianji_jwtauth:\n    public_key_url: ftp://x\n",
                "general_settings.tianji_jwtauth.public_key_url",
            ),
            (
                "  tianji_jwtauth:\n    public_key_url: https://a.test\n    public_key_ttl: 0\n",
                "general_settings.tianji_jwtauth.public_key_ttl",
            ),
            (
                "  tianji_jwtauth:\n    public_key_url: https://a.test\n    roles_jwt_field: roles\n    role_mappings: [{role: a, internal_role: god}]\n",
                "general_settings.tianji_jwtauth.role_mappings[0].internal_role",
            ),
            (
                "  tianji_jwtauth:\n    public_key_url: https://a.test\n    role_mappings: [{role: a, internal_role: proxy_admin}]\n",
                "general_settings.tianji_jwtauth.role_mappings",
            ),
        ] {
            assert_eq!(path_of(load(extra).unwrap_err()), path, "{extra}");
        }
        let e = Loaded::from_yaml("general_settings:\n  enable_jwt_auth: true\n  tianji_jwtauth: {public_key_url: https://a.test}\n").unwrap_err();
        assert_eq!(path_of(e), "general_settings.enable_jwt_auth");
    }
}
