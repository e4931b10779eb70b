//! The Skills API (Anthropic's `/v1/skills`, beta): skills uploaded as a zip or loose files
//! (`files[]`), checked by [`crate::skills::archive`] before anything is stored or forwarded,
//! then kept in one of two places, chosen as LiteLLM chooses:
//!
//! - an Anthropic account: a request naming a model (`x-tianji-model` header, `?model=`, or a
//!   `model` form field) goes to that model's Anthropic deployment ([`account`]); the skill is
//!   also recorded in `"TianjiLLM_SkillsTable"` with the deployment holding it, so later calls
//!   (and `/v1/messages` requests naming it in `container.skills`) find that account;
//! - the gateway: without a model (or with `custom_llm_provider=tianji_proxy`), the skill lives
//!   only in the table (and its versions in `"TianjiLLM_SkillVersionTable"`).
//!
//! Who sees what ([`access`]): admins see every skill; a key sees the skills it (its user, its
//! team) created and those its own or its team's `object_permission.skills` names; only the
//! creator or an admin deletes. Discovery (`/.well-known/agent-skills/index.json`) lists the
//! caller's skills with the URL of each archive.

mod access;
mod account;
pub mod form;
mod shapes;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::body::Body;
use crate::error::{GatewayError, json_response};
use crate::request_body::RequestBody;
use crate::skills::archive::{self, ArchiveError};
use crate::state::AppState;
use crate::store::{Query, Store, StoreError};
use crate::upstream::UpstreamError;

/// A statement's parameter.
type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
/// Parameters of a statement.
type Params<'a> = [Param<'a>];
use access::Owner;

/// Anthropic's limit on a skill upload; `general_settings.skill_max_upload_mb` changes it.
pub const DEFAULT_MAX_UPLOAD: usize = 8 << 20;
/// Room for the multipart envelope around the files.
const FORM_OVERHEAD: usize = 64 << 10;
/// Skills per page when `limit` is not given, and the most a page holds.
const PAGE: usize = 20;
const MAX_PAGE: usize = 100;

/// Which path of the Skills API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// `/v1/skills`: create (POST), list (GET).
    Collection,
    /// `/v1/skills/{id}`: get, delete.
    Item,
    /// `/v1/skills/{id}/archive`: the latest version's zip.
    Archive,
    /// `/v1/skills/{id}/versions`: create (POST), list (GET).
    Versions,
    /// `/v1/skills/{id}/versions/{version}`: get, delete.
    Version,
    /// `/v1/skills/{id}/versions/{version}/content`: that version's zip.
    VersionContent,
    /// `/.well-known/agent-skills/index.json` (and `/.well-known/skills/index.json`).
    Index,
}

/// Why a Skills API call failed.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{0}")]
    BadForm(String),
    #[error("Skill {0} not found")]
    NotFound(String),
    #[error("Version {1} of skill {0} not found")]
    VersionNotFound(String, String),
    #[error("Forbidden. Only the creator of skill {0} or an admin can change or delete it.")]
    NotYours(String),
    #[error("Skills are kept in the database: set general_settings.database_url or DATABASE_URL")]
    NoDatabase,
    #[error(
        "The deployment of model {0} is not an Anthropic account (skills live on Anthropic deployments, or in the gateway when no model is named)"
    )]
    NotAnthropic(String),
    #[error("The deployment holding skill {0} is no longer configured")]
    Gone(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::error::feature_error!(SkillError, "skills");

impl SkillError {
    pub fn status(&self) -> StatusCode {
        match self {
            SkillError::Archive(ArchiveError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            SkillError::Archive(_) | SkillError::BadForm(_) | SkillError::NotAnthropic(_) => {
                StatusCode::BAD_REQUEST
            }
            SkillError::NotFound(_) | SkillError::VersionNotFound(..) | SkillError::Gone(_) => {
                StatusCode::NOT_FOUND
            }
            SkillError::NotYours(_) => StatusCode::FORBIDDEN,
            SkillError::NoDatabase | SkillError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The upload cap of this gateway.
fn max_upload(state: &AppState) -> usize {
    state
        .config()
        .general_settings
        .skill_max_upload_mb
        .filter(|mb| *mb > 0.0)
        .map_or(DEFAULT_MAX_UPLOAD, |mb| (mb * 1024.0 * 1024.0) as usize)
}

fn ok(v: &Value) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from(v.to_string()))
}

fn zip_response(name: &str, bytes: Bytes) -> Response<Body> {
    let mut r = Response::new(Body::full(bytes));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/zip"),
    );
    let safe: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if let Ok(v) = http::HeaderValue::from_str(&format!("attachment; filename=\"{safe}.zip\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// Serve a Skills API path; `id` is the skill's, where the path has one.
pub async fn serve(
    state: &AppState,
    at: At,
    id: Option<String>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let store = state.store.as_deref().ok_or(SkillError::NoDatabase)?;
    let cx = Cx {
        state,
        store,
        principal: &principal,
    };
    let id = id.unwrap_or_default();
    let version = version_of(req.uri().path());
    let method = req.method().clone();
    match (at, method) {
        (At::Collection, Method::POST) => cx.create(req).await,
        (At::Collection, _) => cx.list(req.uri().query()).await,
        (At::Item, Method::DELETE) => cx.delete(&id).await,
        (At::Item, _) => Ok(ok(&shapes::skill(&cx.readable(&id).await?))),
        (At::Archive, _) => cx.archive(&id, "").await,
        (At::Versions, Method::POST) => cx.new_version(&id, req).await,
        (At::Versions, _) => cx.versions(&id, req.uri().query()).await,
        (At::Version, Method::DELETE) => cx.delete_version(&id, &version).await,
        (At::Version, _) => cx.version(&id, &version).await,
        (At::VersionContent, _) => cx.archive(&id, &version).await,
        (At::Index, _) => cx.index(req.headers()).await,
    }
}

/// The `{version}` segment of `/v1/skills/{id}/versions/{version}[/content]`.
fn version_of(path: &str) -> String {
    let mut parts = path.split('/').skip_while(|p| *p != "versions");
    parts.next();
    parts.next().unwrap_or_default().to_string()
}

/// One call's context.
struct Cx<'a> {
    state: &'a AppState,
    store: &'a Store,
    principal: &'a Principal,
}

impl Cx<'_> {
    async fn rows(
        &self,
        q: Query,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Value>, GatewayError> {
        Ok(self
            .store
            .query(q, params)
            .await
            .map_err(SkillError::from)?
            .iter()
            .filter_map(|r| r.try_get::<_, Value>(0).ok())
            .collect())
    }

    /// The skill row `id`, if the caller may read it.
    async fn readable(&self, id: &str) -> Result<Value, GatewayError> {
        let row = self
            .rows(Query::GetSkill, &[&id])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| SkillError::NotFound(id.to_string()))?;
        if !access::may_read(self.principal, &row) {
            // not listed to this caller: answered as absent
            return Err(SkillError::NotFound(id.to_string()).into());
        }
        Ok(row)
    }

    /// The skill row `id`, if the caller may change it.
    async fn writable(&self, id: &str) -> Result<Value, GatewayError> {
        let row = self.readable(id).await?;
        if !access::may_write(self.principal, &row) {
            return Err(SkillError::NotYours(id.to_string()).into());
        }
        Ok(row)
    }

    /// `POST /v1/skills`
    async fn create(&self, req: Request<RequestBody>) -> Result<Response<Body>, GatewayError> {
        let limit = max_upload(self.state);
        let (parts, body) = req.into_parts();
        let form = form::read(&parts.headers, body, limit + FORM_OVERHEAD).await?;
        let skill = archive::check_files(form.files.clone(), limit).map_err(SkillError::from)?;
        let title = form.title.clone().unwrap_or_else(|| skill.name.clone());
        let hint = form
            .model
            .clone()
            .or_else(|| crate::managed::model_hint(&parts.headers, parts.uri.query()));
        let owner = Owner::of(self.principal);
        let version = version_now();
        let (id, mut meta) = match hint.filter(|_| !form.in_gateway()) {
            Some(model) => {
                let dep = crate::managed::pick(self.state, self.principal, &model).await?;
                let made = account::create(self.state, &dep, &form, &skill).await?;
                let id = made
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let meta = json!({
                    "backend": "anthropic",
                    "deployment_id": dep.id,
                    "model": model,
                    "provider": made,
                });
                (id, meta)
            }
            None => (
                format!("skill_{}", uuid::Uuid::now_v7().simple()),
                json!({"backend": "tianji_proxy"}),
            ),
        };
        if id.is_empty() {
            let e = UpstreamError::Body("the account answered without a skill id".into());
            return Err(GatewayError::Upstream(e));
        }
        meta["owner"] = owner.to_json();
        meta["name"] = json!(skill.name);
        meta["directory"] = json!(skill.directory);
        meta["digest"] = json!(skill.digest);
        let latest = meta
            .pointer("/provider/latest_version")
            .or_else(|| meta.pointer("/provider/latest_version_id"))
            .and_then(Value::as_str)
            .map_or(version.clone(), str::to_string);
        let by = owner.by();
        let file_name = format!("{}.zip", skill.directory);
        let zip = skill.zip.to_vec();
        let row = self
            .write(
                (
                    Query::InsertSkill,
                    &[
                        &id,
                        &title,
                        &skill.description,
                        &skill.instructions,
                        &latest,
                        &zip,
                        &file_name,
                        &meta,
                        &by,
                    ],
                ),
                (
                    Query::InsertSkillVersion,
                    &version_params(&id, &latest, &skill, &zip, &by),
                ),
            )
            .await?;
        self.changed().await;
        Ok(ok(&shapes::skill(&row)))
    }

    /// Tell every instance where skills live now.
    async fn changed(&self) {
        self.state.invalidate(&[crate::auth::Changed::Skills]).await;
    }

    /// Run `first` (its row returned) and `then` in one transaction.
    async fn write(
        &self,
        first: (Query, &Params<'_>),
        then: (Query, &Params<'_>),
    ) -> Result<Value, GatewayError> {
        let db = |e: tokio_postgres::Error| SkillError::from(StoreError::from(e));
        let mut conn = self.store.conn().await.map_err(SkillError::from)?;
        let (client, prepared) = conn.parts();
        let tx = client.transaction().await.map_err(db)?;
        let st = prepared.get(first.0).map_err(SkillError::from)?;
        let row = tx.query_one(st, first.1).await.map_err(db)?;
        let st = prepared.get(then.0).map_err(SkillError::from)?;
        tx.execute(st, then.1).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(row
            .try_get::<_, Value>(0)
            .map_err(|e| SkillError::from(StoreError::from(e)))?)
    }

    /// `GET /v1/skills`: the caller's skills, oldest first, paged by `limit` with `page` (the
    /// token `next_page` gave), `after_id` or `before_id`.
    async fn list(&self, query: Option<&str>) -> Result<Response<Body>, GatewayError> {
        let param = |n: &str| crate::util::query::query_param(query, n);
        let limit = match param("limit") {
            None => PAGE,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    SkillError::BadForm(format!("limit must be between 1 and {MAX_PAGE}"))
                })?,
        };
        let rows: Vec<Value> = self
            .rows(Query::ListSkills, &[])
            .await?
            .into_iter()
            .filter(|r| access::may_read(self.principal, r))
            .filter(|r| {
                param("source").is_none_or(|s| r.get("source").and_then(Value::as_str) == Some(&s))
            })
            .collect();
        let id_of = |r: &Value| {
            r.get("skill_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let after = param("page").or_else(|| param("after_id"));
        let start = after
            .and_then(|a| rows.iter().position(|r| id_of(r).as_deref() == Some(&a)))
            .map_or(0, |i| i + 1);
        let end = param("before_id")
            .and_then(|b| rows.iter().position(|r| id_of(r).as_deref() == Some(&b)))
            .unwrap_or(rows.len())
            .max(start);
        let page: Vec<&Value> = rows[start..end].iter().take(limit).collect();
        let has_more = start + page.len() < end;
        let data: Vec<Value> = page.iter().map(|r| shapes::skill(r)).collect();
        let last = page.last().and_then(|r| id_of(r));
        Ok(ok(&json!({
            "data": data,
            "has_more": has_more,
            "next_page": if has_more { last.clone() } else { None },
            "first_id": page.first().and_then(|r| id_of(r)),
            "last_id": last,
        })))
    }

    /// `DELETE /v1/skills/{id}`: from the account first (when one holds it), then here.
    async fn delete(&self, id: &str) -> Result<Response<Body>, GatewayError> {
        let row = self.writable(id).await?;
        if let Some(dep) = self.home(id, &row)? {
            for v in self.rows(Query::ListSkillVersions, &[&id]).await? {
                let version = v.get("version").and_then(Value::as_str).unwrap_or_default();
                account::delete_version(self.state, &dep, id, version).await?;
            }
            account::delete(self.state, &dep, id).await?;
        }
        self.rows(Query::DeleteSkill, &[&id]).await?;
        self.changed().await;
        Ok(ok(&json!({"id": id, "type": "skill_deleted"})))
    }

    /// The deployment holding skill `id`, when an account holds it.
    fn home(
        &self,
        id: &str,
        row: &Value,
    ) -> Result<Option<std::sync::Arc<crate::router::Deployment>>, SkillError> {
        let Some(dep_id) = row
            .pointer("/metadata/deployment_id")
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let table = self.state.models.load_full();
        table
            .deployments()
            .find(|d| d.id == dep_id)
            .cloned()
            .map(Some)
            .ok_or_else(|| SkillError::Gone(id.to_string()))
    }

    /// `GET /v1/skills/{id}/archive` and `.../versions/{version}/content`.
    async fn archive(&self, id: &str, version: &str) -> Result<Response<Body>, GatewayError> {
        let row = self.readable(id).await?;
        let got = self
            .store
            .query(Query::SkillArchive, &[&id, &version])
            .await
            .map_err(SkillError::from)?;
        let zip: Option<Vec<u8>> = got.first().and_then(|r| r.try_get(0).ok());
        let zip = zip.ok_or_else(|| SkillError::VersionNotFound(id.into(), version.into()))?;
        let name = row
            .pointer("/metadata/directory")
            .and_then(Value::as_str)
            .unwrap_or(id);
        Ok(zip_response(name, Bytes::from(zip)))
    }

    /// `POST /v1/skills/{id}/versions`: a new version (same `name` as the skill's).
    async fn new_version(
        &self,
        id: &str,
        req: Request<RequestBody>,
    ) -> Result<Response<Body>, GatewayError> {
        let row = self.writable(id).await?;
        let limit = max_upload(self.state);
        let (parts, body) = req.into_parts();
        let form = form::read(&parts.headers, body, limit + FORM_OVERHEAD).await?;
        let skill = archive::check_files(form.files.clone(), limit).map_err(SkillError::from)?;
        if let Some(name) = row.pointer("/metadata/name").and_then(Value::as_str)
            && name != skill.name
        {
            return Err(SkillError::Archive(ArchiveError::FrontMatter(format!(
                "`name` must stay `{name}` across versions (got `{}`)",
                skill.name
            )))
            .into());
        }
        let version = match self.home(id, &row)? {
            Some(dep) => {
                let made = account::create_version(self.state, &dep, id, &form, &skill).await?;
                made.get("version")
                    .or_else(|| made.get("id"))
                    .and_then(Value::as_str)
                    .map_or_else(version_now, str::to_string)
            }
            None => version_now(),
        };
        let by = Owner::of(self.principal).by();
        let zip = skill.zip.to_vec();
        let stored = self
            .write(
                (
                    Query::InsertSkillVersion,
                    &version_params(&id, &version, &skill, &zip, &by),
                ),
                (
                    Query::SetSkillLatest,
                    &[
                        &id,
                        &version,
                        &skill.description,
                        &skill.instructions,
                        &zip,
                        &by,
                    ],
                ),
            )
            .await?;
        Ok(ok(&shapes::version(&stored)))
    }

    /// `GET /v1/skills/{id}/versions`, newest first, paged like the skills.
    async fn versions(
        &self,
        id: &str,
        query: Option<&str>,
    ) -> Result<Response<Body>, GatewayError> {
        self.readable(id).await?;
        let limit = crate::util::query::query_param(query, "limit")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(PAGE)
            .clamp(1, MAX_PAGE);
        let rows = self.rows(Query::ListSkillVersions, &[&id]).await?;
        let start = crate::util::query::query_param(query, "page")
            .and_then(|p| {
                rows.iter()
                    .position(|r| r.get("version").and_then(Value::as_str) == Some(&p))
            })
            .map_or(0, |i| i + 1);
        let page: Vec<&Value> = rows.iter().skip(start).take(limit).collect();
        let has_more = start + page.len() < rows.len();
        let next = page
            .last()
            .and_then(|r| r.get("version").cloned())
            .filter(|_| has_more);
        let data: Vec<Value> = page.iter().map(|r| shapes::version(r)).collect();
        Ok(ok(
            &json!({"data": data, "has_more": has_more, "next_page": next}),
        ))
    }

    /// `GET /v1/skills/{id}/versions/{version}`
    async fn version(&self, id: &str, version: &str) -> Result<Response<Body>, GatewayError> {
        self.readable(id).await?;
        let rows = self.rows(Query::ListSkillVersions, &[&id]).await?;
        let v = rows
            .iter()
            .find(|r| r.get("version").and_then(Value::as_str) == Some(version))
            .ok_or_else(|| SkillError::VersionNotFound(id.into(), version.into()))?;
        Ok(ok(&shapes::version(v)))
    }

    /// `DELETE /v1/skills/{id}/versions/{version}`
    async fn delete_version(
        &self,
        id: &str,
        version: &str,
    ) -> Result<Response<Body>, GatewayError> {
        let row = self.writable(id).await?;
        let rows = self.rows(Query::ListSkillVersions, &[&id]).await?;
        if !rows
            .iter()
            .any(|r| r.get("version").and_then(Value::as_str) == Some(version))
        {
            return Err(SkillError::VersionNotFound(id.into(), version.into()).into());
        }
        if let Some(dep) = self.home(id, &row)? {
            account::delete_version(self.state, &dep, id, version).await?;
        }
        self.rows(Query::DeleteSkillVersion, &[&id, &version])
            .await?;
        Ok(ok(&json!({"id": version, "type": "skill_version_deleted"})))
    }

    /// `GET /.well-known/agent-skills/index.json`: the caller's skills with their archives.
    async fn index(&self, headers: &http::HeaderMap) -> Result<Response<Body>, GatewayError> {
        let base = crate::admin::agents::base_url(self.state, headers);
        let skills: Vec<Value> = self
            .rows(Query::ListSkills, &[])
            .await?
            .iter()
            .filter(|r| access::may_read(self.principal, r))
            .map(|r| {
                let id = r
                    .get("skill_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                json!({
                    "name": r.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
                    "type": "archive",
                    "description": r.get("description").cloned().unwrap_or(Value::Null),
                    "url": format!("{base}/v1/skills/{id}/archive"),
                    "digest": r.pointer("/metadata/digest").cloned().unwrap_or(Value::Null),
                })
            })
            .collect();
        Ok(ok(&json!({"skills": skills})))
    }
}

/// `InsertSkillVersion`'s parameters.
fn version_params<'a>(
    id: Param<'a>,
    version: Param<'a>,
    skill: &'a archive::Skill,
    zip: Param<'a>,
    by: Param<'a>,
) -> [Param<'a>; 8] {
    [
        id,
        version,
        &skill.name,
        &skill.description,
        &skill.directory,
        zip,
        &skill.digest,
        by,
    ]
}

/// A version id: microseconds since the epoch, as Anthropic's are.
fn version_now() -> String {
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    us.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_segment_is_read_from_the_path() {
        assert_eq!(version_of("/v1/skills/s1/versions/123"), "123");
        assert_eq!(version_of("/v1/skills/s1/versions/123/content"), "123");
        assert_eq!(version_of("/v1/skills/s1/versions"), "");
    }
}
