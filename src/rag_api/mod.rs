//! Vector stores and RAG served by the gateway: OpenAI's vector stores API
//! (`/v1/vector_stores...`, [`stores`], [`files`], [`search`]) and LiteLLM's
//! `/v1/rag/ingest` and `/v1/rag/query` ([`rag`]).
//!
//! A store lives in one of two places, chosen when it is created:
//! - the gateway (`custom_llm_provider` absent or `tianji`): its files are read ([`source`]:
//!   an upload, a `/v1/files` id read back from the deployment holding it, or a URL fetched
//!   behind the private-address guard), turned into text and chunks (`crate::rag`), embedded
//!   through the router with the store's `embedding_model` ([`embed`], each call the caller's,
//!   with its SpendLogs row) and kept in Postgres, searched through the instance's index
//!   (`crate::vector_stores`) — [`ingest`] runs that;
//! - a provider (`custom_llm_provider: openai | azure`): every call is forwarded to that
//!   deployment's vector stores API with its credentials, ids sealed to owner and deployment
//!   ([`hosted`]).
//!
//! Who may use a store is `crate::vector_stores::access`.

mod embed;
mod files;
mod hosted;
mod ingest;
mod ocr;
mod rag;
mod search;
mod shapes;
mod source;
mod stores;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use serde_json::Value;

use crate::auth::Principal;
use crate::body::Body;
use crate::error::{GatewayError, json_response};
use crate::pipeline::made::For;
use crate::rag::ExtractError;
use crate::request_body::RequestBody;
use crate::state::AppState;
use crate::store::{Query, Store, StoreError};
use crate::vector_stores::VectorStoreError;
use crate::vector_stores::access::{self, Perm, StoreRef};
use crate::vector_stores::filters::FilterError;

/// Which path of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// `/v1/vector_stores`: create (POST), list (GET).
    Stores,
    /// `/v1/vector_stores/{id}`: get, update (POST), delete.
    Store,
    /// `/v1/vector_stores/{id}/search`
    Search,
    /// `/v1/vector_stores/{id}/files`: attach (POST), list.
    Files,
    /// `/v1/vector_stores/{id}/files/{file_id}`: get, update attributes (POST), delete.
    File,
    /// `/v1/vector_stores/{id}/files/{file_id}/content`
    FileContent,
    /// `/v1/vector_stores/{id}/file_batches` (POST)
    Batches,
    /// `/v1/vector_stores/{id}/file_batches/{batch_id}`
    Batch,
    /// `/v1/vector_stores/{id}/file_batches/{batch_id}/cancel`
    BatchCancel,
    /// `/v1/vector_stores/{id}/file_batches/{batch_id}/files`
    BatchFiles,
    /// `/v1/rag/ingest`
    Ingest,
    /// `/v1/rag/query`
    Query,
}

/// Why a vector store or RAG call failed.
#[derive(Debug, thiserror::Error)]
pub enum RagError {
    #[error(
        "Vector stores are kept in the database: set general_settings.database_url or DATABASE_URL"
    )]
    NoDatabase,
    #[error("Vector store {0} not found")]
    NotFound(String),
    #[error("File {1} not found in vector store {0}")]
    FileNotFound(String, String),
    #[error("File batch {0} not found")]
    BatchNotFound(String),
    #[error("Forbidden. This key may not {1} vector store {0}.")]
    Forbidden(String, &'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "No embedding model: name one (`embedding_model` when creating the store, `ingest_options.embedding.model` when ingesting) or set rag_settings.embedding_model"
    )]
    NoEmbeddingModel,
    #[error("`{0}` is not a model group of this gateway")]
    UnknownModel(String),
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Store(#[from] VectorStoreError),
    #[error("The embedding model {model} failed: {message}")]
    Embedding {
        model: String,
        status: u16,
        message: String,
    },
    #[error("The rerank model {model} failed: {message}")]
    Rerank {
        model: String,
        status: u16,
        message: String,
    },
    #[error(transparent)]
    Fetch(#[from] crate::upstream::fetch::FetchError),
    #[error("Vector store {0} has expired (expires_after): it can be read and deleted, not used")]
    Expired(String),
    #[error("The document is larger than rag_settings.max_file_mb ({0} MiB)")]
    TooLarge(f64),
    #[error("Reading the document failed: {0}")]
    Read(String),
    #[error(
        "custom_llm_provider `{0}` is not supported for vector stores: tianji (the gateway's own, the default), openai or azure"
    )]
    Provider(String),
}

crate::error::feature_error!(RagError, "vector_store");

impl RagError {
    pub fn status(&self) -> StatusCode {
        match self {
            RagError::NoDatabase => StatusCode::SERVICE_UNAVAILABLE,
            RagError::NotFound(_) | RagError::FileNotFound(..) | RagError::BatchNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            RagError::Forbidden(..) => StatusCode::FORBIDDEN,
            RagError::Extract(e) => e.status(),
            RagError::Fetch(e) => e.status(),
            RagError::Embedding { status, .. } | RagError::Rerank { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            RagError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            RagError::Store(VectorStoreError::Dimensions { .. }) => StatusCode::BAD_REQUEST,
            RagError::Store(VectorStoreError::Store(_)) => StatusCode::SERVICE_UNAVAILABLE,
            RagError::Store(_) | RagError::Read(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<StoreError> for RagError {
    fn from(e: StoreError) -> Self {
        RagError::Store(VectorStoreError::Store(e))
    }
}

/// Serve a vector store or RAG path (`id`: the store's, where the path has one).
pub async fn serve(
    state: &Arc<AppState>,
    at: At,
    id: Option<String>,
    req: Request<RequestBody>,
    peer: std::net::SocketAddr,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let store = state.store.clone();
    let who = For {
        principal,
        headers: req.headers().clone(),
        peer,
    };
    let cx = Cx { state, store, who };
    let id = id.unwrap_or_default();
    let sub = second_id(req.uri().path());
    match at {
        At::Ingest => return rag::ingest(&cx, req).await,
        At::Query => return rag::query(&cx, req).await,
        At::Stores => return stores::collection(&cx, req).await,
        _ => {}
    }
    let row = cx.row(&id).await?;
    if hosted::is_hosted(&row) {
        return hosted::forward(&cx, &row, req).await;
    }
    let method = req.method().clone();
    let uses = match at {
        At::Search => true,
        At::Files | At::Batches => method == http::Method::POST,
        _ => false,
    };
    if uses {
        cx.usable(&row)?;
    }
    match at {
        At::Store => stores::item(&cx, row, req).await,
        At::Search => search::serve(&cx, &row, req).await,
        At::Files => files::collection(&cx, &row, req).await,
        At::File | At::FileContent => files::item(&cx, &row, &sub, at, req).await,
        At::Batches => files::create_batch(&cx, &row, req).await,
        At::Batch | At::BatchCancel | At::BatchFiles => {
            files::batch(&cx, &row, &sub, at, &method, req.uri().query()).await
        }
        At::Ingest | At::Query | At::Stores => Err(GatewayError::NotFound(id)),
    }
}

/// The id after `files/` or `file_batches/` in the path.
fn second_id(path: &str) -> String {
    let mut parts = path
        .split('/')
        .skip_while(|p| *p != "files" && *p != "file_batches");
    parts.next();
    parts.next().unwrap_or_default().to_string()
}

/// One call's context.
pub(crate) struct Cx<'a> {
    pub state: &'a Arc<AppState>,
    pub store: Option<Arc<Store>>,
    pub who: For,
}

impl Cx<'_> {
    pub fn principal(&self) -> &Principal {
        &self.who.principal
    }

    pub fn db(&self) -> Result<&Store, RagError> {
        self.store.as_deref().ok_or(RagError::NoDatabase)
    }

    /// JSON rows of a query.
    pub async fn rows(
        &self,
        q: Query,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Value>, RagError> {
        Ok(self
            .db()?
            .query(q, params)
            .await?
            .iter()
            .filter_map(|r| r.try_get::<_, Value>(0).ok())
            .collect())
    }

    pub async fn one(
        &self,
        q: Query,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Value>, RagError> {
        Ok(self.rows(q, params).await?.into_iter().next())
    }

    /// The store row `id`, if the caller may read it (absent otherwise).
    pub async fn row(&self, id: &str) -> Result<Value, RagError> {
        let row = self
            .one(Query::GetVectorStore, &[&id])
            .await?
            .ok_or_else(|| RagError::NotFound(id.to_string()))?;
        if !self.may(&row, Perm::Read).await? {
            return Err(RagError::NotFound(id.to_string()));
        }
        Ok(row)
    }

    /// The store row, if the caller may change it.
    pub async fn writable(&self, row: &Value) -> Result<(), RagError> {
        if self.may(row, Perm::Write).await? {
            return Ok(());
        }
        Err(RagError::Forbidden(
            StoreRef::of(row).id.to_string(),
            "change",
        ))
    }

    /// Whether the caller may use the store `row` for `perm` (index grants looked up).
    pub async fn may(&self, row: &Value, perm: Perm) -> Result<bool, RagError> {
        let s = StoreRef::of(row);
        if access::may(self.principal(), &s, perm) {
            return Ok(true);
        }
        for name in access::index_names(self.principal(), perm) {
            if let Some(ix) = self.one(Query::GetVectorStoreIndex, &[&name]).await?
                && access::index_target(&ix) == Some(s.id)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether the gateway's own store `row` may be used (searched, written): not once it has
    /// expired. A use moves its `last_active_at` on, at most once an hour (in the background:
    /// the row read for the request already says when it was last moved).
    pub fn usable(&self, row: &Value) -> Result<(), RagError> {
        let id = StoreRef::of(row).id.to_string();
        if shapes::is_expired(row) {
            return Err(RagError::Expired(id));
        }
        let stale = shapes::last_active(row) + 3_600 <= crate::util::clock::now_whole_secs() as i64;
        if stale
            && shapes::expires_at(row).is_some()
            && let Some(store) = self.store.clone()
        {
            tokio::spawn(async move {
                if let Err(e) = store.query(Query::TouchVectorStore, &[&id]).await {
                    tracing::warn!(vector_store = %id, error = %e, "vector store: last_active_at not moved");
                }
            });
        }
        Ok(())
    }

    /// Tell every instance (this one too) that the store's files changed.
    pub async fn changed(&self, id: &str) {
        (self.state)
            .invalidate(&[crate::auth::Changed::VectorStore(id.to_string())])
            .await;
    }
}

/// `path` on the deployment `dep` (an OpenAI-shaped one).
fn endpoint(dep: &crate::router::Deployment, path: &str) -> Result<http::Uri, GatewayError> {
    dep.uri(path)
        .ok_or_else(|| crate::managed::ManagedError::Unsupported(dep.model_name.clone()).into())
}

/// Admit a call the gateway makes to `dep` for the caller (model access, rate limits, budgets)
/// and start its SpendLogs record (`call_type`, `endpoint`); set its `status` when answered.
async fn admit(
    cx: &Cx<'_>,
    dep: &std::sync::Arc<crate::router::Deployment>,
    call_type: &'static str,
    endpoint: &'static str,
) -> Result<crate::pipeline::post::Completion, GatewayError> {
    let side = crate::pipeline::Side::on(dep, call_type, endpoint);
    crate::pipeline::side_call(cx.state, cx.principal(), side).await
}

/// A store row's id (the gateway's).
fn store_id(row: &Value) -> &str {
    row.get("unified_resource_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn ok(v: &Value) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from(v.to_string()))
}

/// A request's JSON body (an object; an empty body is `{}`).
async fn json_body(cx: &Cx<'_>, req: Request<RequestBody>) -> Result<Value, GatewayError> {
    let (parts, body) = req.into_parts();
    let raw = crate::pipeline::parse::read_declared(&parts.headers, body, cx.state.max_body_bytes)
        .await?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let v: Value = serde_json::from_slice(&raw)
        .map_err(|e| RagError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(RagError::BadRequest("the body must be a JSON object".into()).into());
    }
    Ok(v)
}
