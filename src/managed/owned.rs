//! Objects the gateway lists per owner (`"TianjiLLM_ManagedObjectTable"`): videos,
//! containers, batches and fine-tuning jobs. A row keeps the id the client got, the provider's
//! id, the deployment holding the object (and its model group), its owner and the object as last
//! seen, so `GET /v1/videos` or `/v1/batches` shows a caller its own objects from any instance. Rows are a listing aid: the sealed id alone still reaches the
//! object, so a failed write is logged, not an error.

use http::StatusCode;
use serde_json::{Value, json};

use super::ids::{self, Kind};
use crate::auth::Principal;
use crate::router::Deployment;
use crate::state::AppState;
use crate::store::{Query, StoreError};

/// Why a listing failed.
#[derive(Debug, thiserror::Error)]
pub enum OwnedError {
    #[error(
        "Listing {0}s needs the database (the gateway's record of who created each one); an admin may list a provider account with ?model= or x-tianji-model"
    )]
    NoStore(&'static str),
    #[error("`{0}` is not a valid {1}")]
    BadParam(&'static str, &'static str),
    #[error("The gateway's records of {0}s are unavailable: {1}")]
    Store(&'static str, StoreError),
}

crate::error::feature_error!(OwnedError, "managed_object");

impl OwnedError {
    pub fn status(&self) -> StatusCode {
        match self {
            OwnedError::Store(..) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// `file_purpose` of a kind's rows.
fn purpose(kind: Kind) -> &'static str {
    match kind {
        Kind::Video => "video",
        Kind::Container => "container",
        Kind::File => "file",
        Kind::Batch => "batch",
        Kind::FineTune => "fine-tune",
        Kind::MessageBatch => "message_batch",
    }
}

/// Record a new object (`id` is what the client got, `raw` the provider's id).
pub async fn insert(
    state: &AppState,
    kind: Kind,
    (id, raw): (&str, &str),
    object: &Value,
    dep: &Deployment,
    principal: &Principal,
) {
    let Some(store) = &state.store else { return };
    let status = status_of(object);
    let user = crate::responses::caller_user(principal);
    let team = crate::responses::caller_team(principal);
    let p = purpose(kind);
    let r = store
        .query(
            Query::InsertManagedObject,
            &[
                &id,
                &raw,
                object,
                &p,
                &status,
                &dep.id,
                &dep.model_name,
                &user,
                &team,
            ],
        )
        .await;
    if let Err(e) = r {
        tracing::warn!(deployment = %dep.id, kind = p, error = %e, "object not recorded for listings");
    }
}

/// The `status` of an object.
fn status_of(object: &Value) -> &str {
    object.get("status").and_then(Value::as_str).unwrap_or("")
}

/// Keep the object as seen now.
pub async fn update(state: &AppState, kind: Kind, dep_id: &str, raw: &str, object: &Value) {
    let Some(store) = &state.store else { return };
    let status = status_of(object);
    let p = purpose(kind);
    let r = store
        .query(
            Query::UpdateManagedObject,
            &[&dep_id, &raw, &p, object, &status],
        )
        .await;
    if let Err(e) = r {
        tracing::warn!(deployment = %dep_id, kind = p, error = %e, "object record not updated");
    }
}

/// Forget a deleted object.
pub async fn delete(state: &AppState, kind: Kind, dep_id: &str, raw: &str) {
    let Some(store) = &state.store else { return };
    let p = purpose(kind);
    if let Err(e) = store
        .query(Query::DeleteManagedObject, &[&dep_id, &raw, &p])
        .await
    {
        tracing::warn!(deployment = %dep_id, kind = p, error = %e, "deleted object still recorded");
    }
}

/// One recorded object.
#[derive(Debug, Clone)]
pub struct Row {
    /// The id the client got.
    pub id: String,
    pub raw: String,
    pub object: Value,
    pub status: Option<String>,
    pub model_id: String,
}

/// `after`, `limit` (1-100, default 20) and `order` (`desc`, the default, or `asc`); `group`:
/// only objects on deployments of this model group.
#[derive(Debug, Clone)]
pub struct Page {
    after: Option<(String, String)>,
    pub limit: i64,
    newest_first: bool,
    pub group: Option<String>,
}

impl Page {
    pub fn of(state: &AppState, kind: Kind, query: Option<&str>) -> Result<Page, OwnedError> {
        let (limit, newest_first) = limit_and_order(query)?;
        let param = |k| crate::util::query::decoded_param(query, k);
        let after = match param("after") {
            None => None,
            Some(id) => {
                let o = ids::open(state.response_ids.sealer(), kind, &id)
                    .ok_or(OwnedError::BadParam("after", kind.noun()))?;
                Some((o.raw, o.model_id))
            }
        };
        Ok(Page {
            after,
            limit,
            newest_first,
            group: None,
        })
    }
}

/// `limit` (1-100, default 20) and whether `order` is newest first (`desc`, the default).
pub fn limit_and_order(query: Option<&str>) -> Result<(i64, bool), OwnedError> {
    let param = |k| crate::util::query::decoded_param(query, k);
    let limit = match param("limit") {
        None => 20,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or(OwnedError::BadParam("limit", "number from 1 to 100"))?,
    };
    let newest_first = match param("order").as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(OwnedError::BadParam("order", "order (asc or desc)")),
    };
    Ok((limit, newest_first))
}

/// The caller's objects of `kind` (an admin's: everyone's), one page and whether more follow.
pub async fn list(
    state: &AppState,
    kind: Kind,
    principal: &Principal,
    page: &Page,
) -> Result<(Vec<Row>, bool), OwnedError> {
    let store = state
        .store
        .as_ref()
        .ok_or(OwnedError::NoStore(kind.noun()))?;
    let mine = !principal.is_admin();
    let user = crate::responses::caller_user(principal);
    let team = crate::responses::caller_team(principal);
    let (after, after_dep) = page.after.clone().unzip();
    let rows = store
        .query(
            Query::ListManagedObjects,
            &[
                &purpose(kind),
                &mine,
                &user,
                &team,
                &(page.limit + 1),
                &page.newest_first,
                &after,
                &after_dep,
                &page.group,
            ],
        )
        .await
        .map_err(|e| OwnedError::Store(kind.noun(), e))?;
    let more = rows.len() as i64 > page.limit;
    let mut out = Vec::new();
    for row in rows.iter().take(page.limit as usize) {
        let text = |i: usize| row.try_get::<_, String>(i);
        let (Ok(id), Ok(raw), Ok(model_id)) = (text(0), text(1), text(4)) else {
            continue;
        };
        out.push(Row {
            id,
            raw,
            object: row.try_get::<_, Value>(2).unwrap_or(Value::Null),
            status: row.try_get::<_, Option<String>>(3).ok().flatten(),
            model_id,
        });
    }
    Ok((out, more))
}

/// OpenAI's list page of `data`.
pub fn list_body(data: Vec<Value>, has_more: bool) -> Value {
    let id = |v: Option<&Value>| v.and_then(|o| o.get("id")).cloned();
    json!({
        "object": "list",
        "first_id": id(data.first()),
        "last_id": id(data.last()),
        "has_more": has_more,
        "data": data,
    })
}
