//! The Claude Code plugin marketplace (LiteLLM's `claude_code_marketplace`): plugins stored in
//! `"TianjiLLM_ClaudeCodePluginTable"`, managed at `/claude-code/plugins` (writes: proxy admins,
//! audited like other managed objects), and the catalogue Claude Code reads
//! (`/plugin marketplace add <url>`) at `GET /claude-code/marketplace.json`: public unless
//! `general_settings.claude_code_marketplace_auth_required`; a key presented there also sees the
//! disabled plugins its (or its team's) `object_permission.skills` names.

use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::audit::{Change, PLUGINS_TABLE};
use super::crud::{Tx, str_of};
use super::{AdminError, Call, ok};
use crate::auth::{AuthError, Principal};
use crate::body::Body;
use crate::error::GatewayError;
use crate::request_body::RequestBody;
use crate::state::AppState;
use crate::store::Query;

/// The source kinds a plugin may come from.
const SOURCE_KINDS: &str = "source.source must be 'github', 'url', 'git-subdir', or 'archive'";

/// The catalogue fields kept in `manifest_json`, space-separated.
const MANIFEST_FIELDS: &str =
    "author homepage keywords category domain namespace installation_preference";

/// A create or update body (LiteLLM's `RegisterPluginRequest`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginBody {
    name: Option<String>,
    source: Option<Map<String, Value>>,
    version: Option<String>,
    description: Option<String>,
    author: Option<Value>,
    homepage: Option<String>,
    keywords: Option<Vec<String>>,
    category: Option<String>,
    domain: Option<String>,
    namespace: Option<String>,
    installation_preference: Option<String>,
    enabled: Option<bool>,
}

fn not_found(name: &str) -> AdminError {
    AdminError::NotFound {
        param: "name",
        message: format!("Plugin '{name}' not found"),
    }
}

/// The 403 of writes by non-admins.
const ADMINS_ONLY: &str = "Only proxy admins can register, change or delete plugins";

/// Kebab-case: lowercase letters and digits in words joined by single hyphens.
pub fn is_kebab(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn https(url: &str) -> bool {
    url.strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

fn text<'a>(src: &'a Map<String, Value>, field: &str) -> Result<&'a str, AdminError> {
    src.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AdminError::invalid(
                &format!("source.{field}"),
                format!("`source.{field}` is required"),
            )
        })
}

/// Check a plugin source; returns the URL it is fetched from (the `source_url` column).
pub fn check_source(src: &Map<String, Value>) -> Result<String, AdminError> {
    let kind = src.get("source").and_then(Value::as_str).unwrap_or("");
    match kind {
        "github" => {
            let repo = text(src, "repo")?;
            let mut parts = repo.split('/');
            let well_formed = matches!((parts.next(), parts.next(), parts.next()), (Some(o), Some(r), None) if !o.is_empty() && !r.is_empty());
            if !well_formed {
                return Err(AdminError::invalid("source.repo", "must be 'owner/repo'"));
            }
            Ok(format!("https://github.com/{repo}"))
        }
        "url" => Ok(text(src, "url")?.to_string()),
        "git-subdir" => {
            let url = text(src, "url")?;
            let path = text(src, "path")?;
            if path.starts_with('/') || path.split('/').any(|p| p == "..") {
                return Err(AdminError::invalid(
                    "source.path",
                    "must be a relative path inside the repository",
                ));
            }
            Ok(url.to_string())
        }
        "archive" => {
            let url = text(src, "url")?;
            if !https(url) {
                return Err(AdminError::invalid(
                    "source.url",
                    "an archive URL must be https",
                ));
            }
            if let Some(sha) = src.get("sha256").filter(|v| !v.is_null()) {
                let hex = sha.as_str().unwrap_or("");
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(AdminError::invalid(
                        "source.sha256",
                        "must be 64 hexadecimal digits",
                    ));
                }
            }
            Ok(url.to_string())
        }
        _ => Err(AdminError::invalid("source.source", SOURCE_KINDS)),
    }
}

/// The columns a body sets (`full`: name and source are required, as on create).
fn columns(b: PluginBody, full: bool) -> Result<Map<String, Value>, AdminError> {
    let mut row = Map::new();
    if full {
        let name = b.name.as_deref().map(str::trim).unwrap_or("");
        if !is_kebab(name) {
            return Err(AdminError::invalid(
                "name",
                "must be kebab-case (lowercase letters, digits and single hyphens)",
            ));
        }
        row.insert("name".into(), json!(name));
    }
    match b.source {
        Some(src) => {
            let url = check_source(&src)?;
            row.insert("source_url".into(), json!(url));
            row.insert("source".into(), Value::Object(src));
        }
        None if full => return Err(AdminError::invalid("source", "`source` is required")),
        None => {}
    }
    if let Some(v) = b.version {
        if v.trim().is_empty() {
            return Err(AdminError::invalid("version", "must not be empty"));
        }
        row.insert("version".into(), json!(v));
    }
    if let Some(d) = b.description {
        row.insert("description".into(), json!(d));
    }
    if let Some(e) = b.enabled {
        row.insert("enabled".into(), json!(e));
    }
    if let Some(a) = &b.author
        && !(a.is_null() || a.get("name").is_some_and(Value::is_string))
    {
        return Err(AdminError::invalid(
            "author",
            "must be an object with a `name` (Claude Code's format)",
        ));
    }
    let manifest = [
        ("author", b.author),
        ("homepage", b.homepage.map(Value::String)),
        ("keywords", b.keywords.map(|k| json!(k))),
        ("category", b.category.map(Value::String)),
        ("domain", b.domain.map(Value::String)),
        ("namespace", b.namespace.map(Value::String)),
        (
            "installation_preference",
            b.installation_preference.map(Value::String),
        ),
    ];
    let manifest: Map<String, Value> = manifest
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect();
    row.insert("manifest_json".into(), Value::Object(manifest));
    Ok(row)
}

/// A stored row as the management API answers it.
fn shown(row: &Value) -> Value {
    let col = |name: &str| row.get(name).cloned().unwrap_or(Value::Null);
    let mut out = json!({
        "id": col("id"),
        "name": col("name"),
        "version": col("version"),
        "description": col("description"),
        "source": col("source"),
        "enabled": col("enabled"),
        "created_at": col("created_at"),
        "updated_at": col("updated_at"),
    });
    for f in MANIFEST_FIELDS.split(' ') {
        out[f] = row
            .get("manifest_json")
            .and_then(|m| m.get(f))
            .cloned()
            .unwrap_or(Value::Null);
    }
    out
}

/// A plugin as the catalogue lists it (the entry shape Claude Code reads; absent fields left
/// out).
fn entry(row: &Value) -> Value {
    let mut e = Map::new();
    for f in ["name", "source", "version", "description"] {
        if let Some(v) = row.get(f).filter(|v| !v.is_null()) {
            e.insert(f.into(), v.clone());
        }
    }
    if let Some(m) = row.get("manifest_json").and_then(Value::as_object) {
        for (k, v) in m.iter().filter(|(_, v)| !v.is_null()) {
            let k = match k.as_str() {
                "installation_preference" => "installationPreference",
                k => k,
            };
            e.insert(k.into(), v.clone());
        }
    }
    Value::Object(e)
}

/// `GET /claude-code/plugins[?enabled_only=true]` and `POST /claude-code/plugins`.
pub async fn collection(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    if call.method == Method::POST {
        return create(call).await;
    }
    let enabled_only = call.param("enabled_only").is_some_and(|v| v == "true");
    let rows = call.rows(Query::ListPlugins, &[]).await?;
    let plugins: Vec<Value> = rows
        .iter()
        .filter(|r| !enabled_only || r.get("enabled") == Some(&json!(true)))
        .map(shown)
        .collect();
    Ok(ok(&json!({"count": plugins.len(), "plugins": plugins})))
}

/// `POST /claude-code/plugins`
async fn create(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    call.require_admin(ADMINS_ONLY)?;
    let mut row = columns(call.json()?, true)?;
    let name = row
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    row.insert("created_by".into(), json!(call.changed_by()));
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    if tx.find(Query::GetPluginForUpdate, &name).await?.is_some() {
        return Err(AdminError::invalid(
            "name",
            format!("Plugin '{name}' already exists"),
        ));
    }
    let stored = tx.one(Query::InsertPlugin, &[&Value::Object(row)]).await?;
    let id = str_of(&stored, "id").unwrap_or_default().to_string();
    tx.commit(vec![Change::created(PLUGINS_TABLE, &id, &stored)], &[])
        .await?;
    Ok(ok(&json!({
        "status": "success",
        "action": "created",
        "plugin": shown(&stored),
    })))
}

/// `GET|PUT|DELETE /claude-code/plugins/{name}`.
pub async fn item(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let name = call.path_key.clone().unwrap_or_default();
    match call.method {
        Method::PUT => update(call, &name).await,
        Method::DELETE => delete(call, &name).await,
        _ => {
            let rows = call.rows(Query::ListPlugins, &[]).await?;
            let row = rows
                .iter()
                .find(|r| str_of(r, "name") == Some(name.as_str()))
                .ok_or_else(|| not_found(&name))?;
            Ok(ok(&shown(row)))
        }
    }
}

/// Apply `changes` to the plugin `name` in one audited transaction; the row after.
async fn change(
    call: &Call<'_>,
    name: &str,
    changes: Map<String, Value>,
) -> Result<Value, AdminError> {
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx.get(Query::GetPluginForUpdate, name, not_found).await?;
    let mut row = before.as_object().cloned().unwrap_or_default();
    if let Some(Value::Object(m)) = changes.get("manifest_json") {
        let mut manifest = row
            .get("manifest_json")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        manifest.extend(m.clone());
        row.insert("manifest_json".into(), Value::Object(manifest));
    }
    row.extend(changes.into_iter().filter(|(k, _)| k != "manifest_json"));
    let after = tx
        .one(Query::UpdatePlugin, &[&name, &Value::Object(row)])
        .await?;
    let id = str_of(&after, "id").unwrap_or_default().to_string();
    tx.commit(
        vec![Change::updated(PLUGINS_TABLE, &id, &before, &after)],
        &[],
    )
    .await?;
    Ok(after)
}

/// `PUT /claude-code/plugins/{name}`: the given fields change (the name stays).
async fn update(call: &Call<'_>, name: &str) -> Result<Response<Body>, AdminError> {
    call.require_admin(ADMINS_ONLY)?;
    let body: PluginBody = call.json()?;
    if body.name.as_deref().is_some_and(|n| n != name) {
        return Err(AdminError::invalid("name", "a plugin's name cannot change"));
    }
    let after = change(call, name, columns(body, false)?).await?;
    Ok(ok(&json!({
        "status": "success",
        "action": "updated",
        "plugin": shown(&after),
    })))
}

/// `POST /claude-code/plugins/{name}/enable` and `.../disable`.
pub async fn set_enabled(call: &Call<'_>, enabled: bool) -> Result<Response<Body>, AdminError> {
    call.require_admin(ADMINS_ONLY)?;
    let name = call.path_key.clone().unwrap_or_default();
    let mut changes = Map::new();
    changes.insert("enabled".into(), json!(enabled));
    change(call, &name, changes).await?;
    let done = if enabled { "enabled" } else { "disabled" };
    Ok(ok(&json!({
        "status": "success",
        "message": format!("Plugin '{name}' {done}"),
    })))
}

/// `DELETE /claude-code/plugins/{name}`
async fn delete(call: &Call<'_>, name: &str) -> Result<Response<Body>, AdminError> {
    call.require_admin(ADMINS_ONLY)?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let gone = tx.get(Query::DeletePlugin, name, not_found).await?;
    let id = str_of(&gone, "id").unwrap_or_default().to_string();
    let change = Change::of("deleted", PLUGINS_TABLE, &id, Some(&gone), None);
    tx.commit(vec![change], &[]).await?;
    Ok(ok(&json!({
        "status": "success",
        "message": format!("Plugin '{name}' deleted"),
    })))
}

/// The plugin names a caller was granted (`object_permission.skills` of its key and team).
fn granted(principal: Option<&Principal>) -> Vec<String> {
    let Some(k) = principal.and_then(Principal::key) else {
        return Vec::new();
    };
    let team = k.team.as_deref().and_then(|t| t.object_permission.as_ref());
    [k.key.object_permission.as_ref(), team]
        .into_iter()
        .flatten()
        .filter_map(|p| p.skills.clone())
        .flatten()
        .collect()
}

/// 401 with `WWW-Authenticate: Bearer` (what Claude Code needs to ask for a key).
fn unauthorized(e: AuthError) -> Response<Body> {
    let mut resp = GatewayError::from(AdminError::Auth(e)).into_response();
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    resp.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer"),
    );
    resp
}

/// `GET /claude-code/marketplace.json[?key=sk-…]`: the catalogue Claude Code reads.
pub async fn marketplace(state: &AppState, req: Request<RequestBody>) -> Response<Body> {
    let headers = req.headers();
    let presented = matches!(crate::auth::presented_key(headers), Ok(Some(_)));
    let principal = if presented {
        match state.auth.authenticate(headers).await {
            Ok(p) => Some(p),
            Err(e) => return unauthorized(e),
        }
    } else if state
        .config()
        .general_settings
        .claude_code_marketplace_auth_required
    {
        return unauthorized(AuthError::NoKey);
    } else {
        None
    };
    let Some(store) = state.store.as_ref() else {
        return GatewayError::from(AdminError::NoDatabase).into_response();
    };
    let rows = match store.query(Query::ListPlugins, &[]).await {
        Ok(rows) => rows,
        Err(e) => return GatewayError::from(AdminError::from(e)).into_response(),
    };
    let grants = granted(principal.as_ref());
    let plugins: Vec<Value> = rows
        .iter()
        .filter_map(|r| r.try_get::<_, Value>(0).ok())
        .filter(|r| {
            r.get("enabled") == Some(&json!(true))
                || str_of(r, "name").is_some_and(|n| grants.iter().any(|g| g == n))
        })
        .map(|r| entry(&r))
        .collect();
    let catalogue = json!({
        "name": "tianji",
        "owner": {"name": "Tianji"},
        "plugins": plugins,
    });
    let mut resp = ok(&catalogue);
    if principal.is_some() {
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("private"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn names_must_be_kebab_case() {
        for good in ["a", "my-plugin", "p2-x9"] {
            assert!(is_kebab(good), "{good}");
        }
        for bad in ["", "My-Plugin", "a--b", "-a", "a-", "a_b", "a b", "é"] {
            assert!(!is_kebab(bad), "{bad}");
        }
    }

    #[test]
    fn sources_are_checked_by_kind() {
        let ok_sources = [
            json!({"source": "github", "repo": "org/repo"}),
            json!({"source": "url", "url": "https://git.example.com/p.git"}),
            json!({"source": "git-subdir", "url": "https://github.com/o/r.git", "path": "plugins/p"}),
            json!({"source": "archive", "url": "https://example.com/p.zip", "sha256": "a".repeat(64)}),
        ];
        for s in ok_sources {
            assert!(check_source(&src(s.clone())).is_ok(), "{s}");
        }
        let bad = [
            (json!({"source": "ftp", "url": "x"}), "source.source"),
            (json!({"repo": "o/r"}), "source.source"),
            (
                json!({"source": "github", "repo": "no-slash"}),
                "source.repo",
            ),
            (json!({"source": "github"}), "source.repo"),
            (
                json!({"source": "git-subdir", "url": "https://h/r", "path": "../x"}),
                "source.path",
            ),
            (
                json!({"source": "archive", "url": "http://example.com/p.zip"}),
                "source.url",
            ),
            (
                json!({"source": "archive", "url": "https://e.com/p.zip", "sha256": "xyz"}),
                "source.sha256",
            ),
        ];
        for (s, field) in bad {
            let e = check_source(&src(s.clone())).unwrap_err();
            assert_eq!(e.param(), Some(field), "{s}");
        }
    }

    #[test]
    fn catalogue_entries_leave_out_absent_fields() {
        let row = json!({"name": "p", "source": {"source": "github", "repo": "o/r"}, "version": "1.0.0",
            "description": null, "manifest_json": {"installation_preference": "auto", "homepage": null}});
        assert_eq!(
            entry(&row),
            json!({"name": "p", "source": {"source": "github", "repo": "o/r"}, "version": "1.0.0", "installationPreference": "auto"})
        );
    }
}
