//! `/v1/vector_stores` (create, list) and `/v1/vector_stores/{id}` (get, update, delete) of
//! the gateway's own stores; creating a hosted one goes to [`super::hosted`].

use http::{Method, Request, Response};
use serde_json::{Map, Value, json};

use super::shapes::{self, Counts, Page};
use super::{Cx, RagError, files, hosted, json_body, ok};
use crate::auth::Owner;
use crate::body::Body;
use crate::error::GatewayError;
use crate::request_body::RequestBody;
use crate::store::Query;
use crate::vector_stores::access::Perm;

/// The provider a create request asks for (`custom_llm_provider`, default the gateway).
pub fn provider(body: &Value) -> Result<&str, RagError> {
    match body.get("custom_llm_provider").and_then(Value::as_str) {
        None | Some("tianji" | "tianji_proxy" | "litellm_proxy") => Ok("tianji"),
        Some(p @ ("openai" | "azure")) => Ok(p),
        Some(other) => Err(RagError::Provider(other.to_string())),
    }
}

/// `/v1/vector_stores`: create (POST), list (GET).
pub async fn collection(
    cx: &Cx<'_>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    if req.method() == Method::POST {
        let hint = crate::managed::model_hint(req.headers(), req.uri().query());
        let body = json_body(cx, req).await?;
        let p = provider(&body)?.to_string();
        return match p.as_str() {
            "tianji" => {
                let row = create(cx, &body).await?;
                let id = super::store_id(&row).to_string();
                if let Some(ids) = body.get("file_ids").and_then(Value::as_array) {
                    let target = super::ingest::target_of(&row)?;
                    let chunking = super::ingest::chunking(body.get("chunking_strategy"))?;
                    for f in ids.iter().filter_map(Value::as_str) {
                        files::attach(cx, &target, f, json!({}), chunking.clone(), None).await?;
                    }
                }
                let row = cx.row(&id).await?;
                Ok(ok(&object(cx, &row).await?))
            }
            p => hosted::create(cx, p, body.clone(), hint.as_deref()).await,
        };
    }
    let page = Page::of(req.uri().query()).map_err(RagError::BadRequest)?;
    let mut out = Vec::new();
    for row in cx.rows(Query::ListVectorStores, &[]).await? {
        if !cx.may(&row, Perm::Read).await? {
            continue;
        }
        out.push(if hosted::is_hosted(&row) {
            hosted::listed(&row)
        } else {
            object(cx, &row).await?
        });
    }
    Ok(ok(&page.list(out)))
}

/// A new store of the gateway's own for the caller: its row.
pub async fn create(cx: &Cx<'_>, body: &Value) -> Result<Value, RagError> {
    cx.db()?;
    let model = body
        .get("embedding_model")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| cx.state.config().rag_settings.embedding_model.clone())
        .ok_or(RagError::NoEmbeddingModel)?;
    if cx.state.models.load().resolve(&model).is_err() {
        return Err(RagError::UnknownModel(model));
    }
    let mut object = Map::new();
    for f in ["name", "description", "expires_after", "metadata"] {
        if let Some(v) = body.get(f).filter(|v| !v.is_null()) {
            object.insert(f.into(), v.clone());
        }
    }
    check_object(&object)?;
    let owner = Owner::of(cx.principal());
    let mappings = json!({
        "provider": "tianji",
        "embedding_model": model,
        "owner": owner.to_json(),
    });
    let id = format!("vs_{}", uuid::Uuid::now_v7().simple());
    let flat: Vec<String> = Vec::new();
    cx.one(
        Query::InsertVectorStore,
        &[
            &id,
            &Value::Object(object),
            &mappings,
            &flat,
            &owner.by(),
            &owner.team_id,
        ],
    )
    .await?
    .ok_or_else(|| RagError::NotFound(id))
}

/// OpenAI's limits on a store's fields.
fn check_object(o: &Map<String, Value>) -> Result<(), RagError> {
    let bad = |m: &str| Err(RagError::BadRequest(m.to_string()));
    if o.get("name").is_some_and(|n| !n.is_string()) {
        return bad("name must be a string");
    }
    if let Some(m) = o.get("metadata") {
        let Some(m) = m.as_object() else {
            return bad("metadata must be an object of strings");
        };
        if m.len() > 16 || m.values().any(|v| v.as_str().is_none_or(|s| s.len() > 512)) {
            return bad("metadata holds at most 16 strings of at most 512 characters");
        }
    }
    if let Some(e) = o.get("expires_after") {
        let days = e.get("days").and_then(Value::as_i64);
        if e.get("anchor").and_then(Value::as_str) != Some("last_active_at")
            || !days.is_some_and(|d| (1..=365).contains(&d))
        {
            return bad("expires_after must be {\"anchor\": \"last_active_at\", \"days\": 1..365}");
        }
    }
    Ok(())
}

/// The store row as OpenAI's object, with its file counts.
pub async fn object(cx: &Cx<'_>, row: &Value) -> Result<Value, RagError> {
    let id = super::store_id(row);
    let mut counts = Counts::default();
    for r in cx.db()?.query(Query::VectorStoreCounts, &[&id]).await? {
        let (Ok(status), Ok(n), Ok(bytes)) = (
            r.try_get::<_, String>(0),
            r.try_get::<_, i64>(1),
            r.try_get::<_, i64>(2),
        ) else {
            continue;
        };
        counts.add(&status, n, bytes);
    }
    Ok(shapes::store(row, &counts))
}

/// `/v1/vector_stores/{id}`: get, update (POST), delete.
pub async fn item(
    cx: &Cx<'_>,
    row: Value,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let id = super::store_id(&row).to_string();
    match *req.method() {
        Method::POST => {
            cx.writable(&row).await?;
            let body = json_body(cx, req).await?;
            let mut object = row
                .get("resource_object")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for f in ["name", "expires_after", "metadata"] {
                match body.get(f) {
                    Some(Value::Null) => {
                        object.remove(f);
                    }
                    Some(v) => {
                        object.insert(f.into(), v.clone());
                    }
                    None => {}
                }
            }
            check_object(&object)?;
            let by = Owner::of(cx.principal()).by();
            let row = cx
                .one(
                    Query::UpdateVectorStoreObject,
                    &[&id, &Value::Object(object), &by],
                )
                .await?
                .ok_or_else(|| RagError::NotFound(id.clone()))?;
            Ok(ok(&object_of(cx, &row).await?))
        }
        Method::DELETE => {
            cx.writable(&row).await?;
            cx.one(Query::DeleteVectorStore, &[&id])
                .await?
                .ok_or_else(|| RagError::NotFound(id.clone()))?;
            cx.state.vector_stores.forget(&id);
            cx.changed(&id).await;
            Ok(ok(
                &json!({"id": id, "object": "vector_store.deleted", "deleted": true}),
            ))
        }
        _ => Ok(ok(&object_of(cx, &row).await?)),
    }
}

async fn object_of(cx: &Cx<'_>, row: &Value) -> Result<Value, GatewayError> {
    Ok(object(cx, row).await?)
}
