//! `/prompts...`: prompt templates (LiteLLM's prompt management API). Reads come from the live
//! registry (`crate::prompts`: the config's prompts and `TianjiLLM_PromptTable`'s), so they
//! work without a database; writes go through a [`Tx`] (audit rows, then every instance
//! reloads its registry). Creating a prompt whose id exists, or replacing it (`PUT`), stores
//! the next version; `PATCH` changes a version in place; `DELETE` removes every version. Only
//! proxy admins change prompts, and config prompts are not changed here. `POST /prompts/test`
//! renders a `.prompt` text and calls its model for the caller, through the LLM pipeline (the
//! caller's model access, limits and budgets apply), streamed unless `stream: false`.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::audit::{Change, PROMPTS_TABLE};
use super::crud::Tx;
use super::routes::Live;
use super::{AdminError, Call, ok};
use crate::auth::{Changed, Principal};
use crate::body::Body;
use crate::pipeline::made::{self, For};
use crate::pipeline::parse::{Expect, read_declared};
use crate::prompts::{Dotprompt, Prompt, PromptError, access, messages, render, split_version};
use crate::store::Query;

/// A create or replace body (LiteLLM's `Prompt`; `tianji_params` is accepted for
/// `litellm_params`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptBody {
    /// Required to create; on `PUT` the path's id is used.
    prompt_id: Option<String>,
    #[serde(alias = "tianji_params")]
    litellm_params: Map<String, Value>,
    prompt_info: Option<Map<String, Value>>,
}

/// A `PATCH` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(alias = "tianji_params")]
    litellm_params: Option<Map<String, Value>>,
    prompt_info: Option<Map<String, Value>>,
}

/// `POST /prompts/test` (LiteLLM's `TestPromptRequest`, and `stream`).
#[derive(Debug, Deserialize)]
struct TestBody {
    dotprompt_content: String,
    #[serde(default)]
    prompt_variables: Option<Map<String, Value>>,
    /// Messages that replace the rendered ones but its system messages.
    #[serde(default)]
    conversation_history: Option<Vec<Value>>,
    /// LiteLLM always streams the answer; `false` asks for it whole.
    #[serde(default)]
    stream: Option<bool>,
}

/// A prompt error as the management API answers it.
fn refused(e: PromptError) -> AdminError {
    match e {
        PromptError::NotFound(id) => not_found(&id),
        PromptError::NotAllowed(_) => AdminError::Forbidden(e.to_string()),
        PromptError::Store(s) => AdminError::Store(s),
        other => AdminError::invalid(other.param().unwrap_or("litellm_params"), other.to_string()),
    }
}

fn not_found(id: &str) -> AdminError {
    AdminError::NotFound {
        param: "prompt_id",
        message: format!("Prompt {id} not found"),
    }
}

fn require_admin(call: &Call<'_>) -> Result<(), AdminError> {
    call.require_admin("Only proxy admins can create, change or delete prompts")
}

/// The versions of the caller's choice a listing shows: all (admins and viewers), those its
/// key's or team's `prompts` list names, or none.
fn shown_latest(principal: &Principal, p: &[std::sync::Arc<Prompt>]) -> Option<Value> {
    if principal.can_read_all() {
        return p.last().map(|p| p.spec());
    }
    p.iter()
        .rev()
        .find(|p| access::granted(principal, &p.id, p.version))
        .map(|p| p.spec())
}

/// `GET /prompts/list`: the latest version of each prompt the caller may see.
pub async fn list(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let prompts = live.state.prompts.load();
    let list: Vec<Value> = prompts
        .latest()
        .iter()
        .filter_map(|p| shown_latest(&live.principal, prompts.versions(&p.id)))
        .collect();
    Ok(ok(&json!({ "prompts": list })))
}

/// `GET /prompts/{id}/versions`: every version, newest first.
pub async fn versions(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let asked = live.path_key.clone().unwrap_or_default();
    let prompts = live.state.prompts.load();
    let id = match split_version(&asked) {
        Some((id, _)) if prompts.versions(&asked).is_empty() => id,
        _ => asked.as_str(),
    };
    let mut list: Vec<Value> = prompts.versions(id).iter().map(|p| p.spec()).collect();
    if list.is_empty() {
        return Err(AdminError::NotFound {
            param: "prompt_id",
            message: format!("No versions found for prompt ID {id}"),
        });
    }
    list.reverse();
    Ok(ok(&json!({ "prompts": list })))
}

/// `GET|PUT|PATCH|DELETE /prompts/{id}` (and `GET /prompts/{id}/info`).
pub async fn item(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    match live.req.method().clone() {
        Method::GET | Method::HEAD => info(live),
        m => {
            if !live.principal.is_admin() {
                return Err(AdminError::Forbidden(format!(
                    "Only proxy admins can create, change or delete prompts. Your role={}",
                    live.principal.role().name()
                )));
            }
            let call = live.into_call().await?;
            match m {
                Method::PUT => replace(&call).await,
                Method::PATCH => patch(&call).await,
                _ => delete(&call).await,
            }
        }
    }
}

/// One prompt (`id`, or `id.v{N}`) with its template: `{prompt_spec, raw_prompt_template}`.
fn info(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let asked = live.path_key.clone().unwrap_or_default();
    let prompts = live.state.prompts.load();
    let p = prompts
        .find(&asked, None)
        .ok_or_else(|| not_found(&asked))?;
    let principal = &live.principal;
    if !principal.can_read_all() && !access::granted(principal, &p.id, p.version) {
        return Err(AdminError::Forbidden(format!(
            "You are not authorized to access prompt {asked}. Your role={}",
            principal.role().name()
        )));
    }
    Ok(ok(&json!({
        "prompt_spec": p.spec(),
        "raw_prompt_template": p.raw_template(),
    })))
}

/// An id the API may store: not empty, no version suffix, not the config's.
fn writable_id(call: &Call<'_>, id: &str) -> Result<(), AdminError> {
    if id.is_empty() {
        return Err(AdminError::invalid("prompt_id", "`prompt_id` is required"));
    }
    if id.len() > 256 || id.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            "prompt_id",
            "must be at most 256 characters, without control characters",
        ));
    }
    if split_version(id).is_some() {
        return Err(AdminError::invalid(
            "prompt_id",
            "must not end in a version suffix (.v1, .v2, ...): versions are numbered by the gateway",
        ));
    }
    if call.state.prompts.in_config(id) {
        return Err(AdminError::invalid(
            "prompt_id",
            "Cannot update config prompts.",
        ));
    }
    Ok(())
}

/// Checked `litellm_params` (their template readable) and `prompt_info` (`prompt_type: db`
/// unless given), as stored.
fn checked(
    id: &str,
    params: Map<String, Value>,
    info: Option<Map<String, Value>>,
) -> Result<(Value, Value), AdminError> {
    let mut params = params;
    params
        .entry("prompt_id")
        .or_insert_with(|| Value::String(id.to_string()));
    let params = Value::Object(params);
    crate::prompts::stored_template(&params, id).map_err(|e| match e {
        PromptError::Invalid(m) => AdminError::invalid("litellm_params", m),
        e => refused(e),
    })?;
    let mut info = info.unwrap_or_default();
    info.entry("prompt_type").or_insert_with(|| json!("db"));
    Ok((params, Value::Object(info)))
}

/// `POST /prompts`: a new prompt, or the next version of an existing one.
pub async fn create(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    require_admin(call)?;
    let body: PromptBody = call.json()?;
    let id = body
        .prompt_id
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_string();
    writable_id(call, &id)?;
    let (params, info) = checked(&id, body.litellm_params, body.prompt_info)?;
    let stored = next_version(call, &id, &params, &info, false).await?;
    answer(&stored)
}

/// `PUT /prompts/{id}`: the next version of an existing prompt.
async fn replace(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    require_admin(call)?;
    let body: PromptBody = call.json()?;
    let asked = call.path_key.clone().unwrap_or_default();
    let id = resolve(call, &asked).0.to_string();
    writable_id(call, &id)?;
    let (params, info) = checked(&id, body.litellm_params, body.prompt_info)?;
    let stored = next_version(call, &id, &params, &info, true).await?;
    answer(&stored)
}

/// Store the next version of `id` (`existing`: one must exist already).
async fn next_version(
    call: &Call<'_>,
    id: &str,
    params: &Value,
    info: &Value,
    existing: bool,
) -> Result<Value, AdminError> {
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    tx.exec(Query::LockPrompt, &[&id]).await?;
    if existing && tx.rows(Query::GetPromptVersions, &[&id]).await?.is_empty() {
        return Err(not_found(id));
    }
    let stored = tx
        .one(Query::InsertPromptVersion, &[&id, params, info])
        .await?;
    let object = object_id(&stored);
    tx.commit(
        vec![Change::created(PROMPTS_TABLE, &object, &stored)],
        &[Changed::Prompts],
    )
    .await?;
    Ok(stored)
}

/// `{prompt_id}.v{version}`: the audit rows' object id of a version.
fn object_id(row: &Value) -> String {
    format!(
        "{}.v{}",
        row.get("prompt_id")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        row.get("version").and_then(Value::as_i64).unwrap_or(1)
    )
}

/// A stored row as answered (LiteLLM's `PromptSpec`).
fn answer(stored: &Value) -> Result<Response<Body>, AdminError> {
    let p = Prompt::from_row(stored).map_err(refused)?;
    Ok(ok(&p.spec()))
}

/// The prompt and version a path names: `id`, or `id.v{N}` (unless a prompt has that id).
fn resolve<'s>(call: &Call<'_>, asked: &'s str) -> (&'s str, Option<i64>) {
    match split_version(asked) {
        Some((id, n)) if call.state.prompts.load().versions(asked).is_empty() => {
            (id, Some(i64::from(n)))
        }
        _ => (asked, None),
    }
}

/// The stored version `asked` names (`id.v{N}`, else the latest), locked in `tx`.
async fn stored_version(tx: &Tx<'_>, asked: &str) -> Result<(String, Value), AdminError> {
    let (id, version) = resolve(tx.call(), asked);
    if tx.call().state.prompts.in_config(id) {
        return Err(AdminError::invalid(
            "prompt_id",
            "Cannot update config prompts.",
        ));
    }
    tx.exec(Query::LockPrompt, &[&id]).await?;
    let rows = tx.rows(Query::GetPromptVersions, &[&id]).await?;
    let row = match version {
        Some(v) => rows
            .into_iter()
            .find(|r| r.get("version").and_then(Value::as_i64) == Some(v)),
        None => rows.into_iter().last(),
    };
    Ok((id.to_string(), row.ok_or_else(|| not_found(asked))?))
}

/// `PATCH /prompts/{id}`: change a version's `litellm_params` or `prompt_info` in place.
async fn patch(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    require_admin(call)?;
    let body: PatchBody = call.json()?;
    let asked = call.path_key.clone().unwrap_or_default();
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let (id, before) = stored_version(&tx, &asked).await?;
    let params = match body.litellm_params {
        Some(p) => p,
        None => before
            .get("tianji_params")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    };
    let info = body.prompt_info.or_else(|| {
        before
            .get("prompt_info")
            .and_then(Value::as_object)
            .cloned()
    });
    let (params, info) = checked(&id, params, info)?;
    let version = before.get("version").and_then(Value::as_i64).unwrap_or(1);
    let version = i32::try_from(version).unwrap_or(1);
    let after = tx
        .one(Query::UpdatePromptVersion, &[&id, &version, &params, &info])
        .await?;
    let object = object_id(&after);
    tx.commit(
        vec![Change::updated(PROMPTS_TABLE, &object, &before, &after)],
        &[Changed::Prompts],
    )
    .await?;
    answer(&after)
}

/// `DELETE /prompts/{id}`: every version of the prompt.
async fn delete(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    require_admin(call)?;
    let asked = call.path_key.clone().unwrap_or_default();
    let (id, _) = resolve(call, &asked);
    if call.state.prompts.in_config(id) {
        return Err(AdminError::invalid(
            "prompt_id",
            "Cannot delete config prompts.",
        ));
    }
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    tx.exec(Query::LockPrompt, &[&id]).await?;
    let gone = tx.rows(Query::DeletePrompt, &[&id]).await?;
    if gone.is_empty() {
        return Err(not_found(id));
    }
    let objects: Vec<String> = gone.iter().map(object_id).collect();
    let changes = gone
        .iter()
        .zip(&objects)
        .map(|(row, object)| Change::of("deleted", PROMPTS_TABLE, object, Some(row), None))
        .collect();
    tx.commit(changes, &[Changed::Prompts]).await?;
    Ok(ok(
        &json!({"message": format!("Prompt {id} deleted successfully")}),
    ))
}

/// `POST /prompts/test`: render `dotprompt_content` with `prompt_variables` and call the
/// front matter's model with the result, for the caller (streamed unless `stream: false`).
pub async fn test(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let Live {
        state,
        principal,
        req,
        ..
    } = live;
    let peer = (req.extensions().get::<SocketAddr>().copied())
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let (parts, body) = req.into_parts();
    let raw = read_declared(&parts.headers, body, state.max_body_bytes).await?;
    let t: TestBody = serde_json::from_slice(&raw).map_err(|e| {
        let field = if e.to_string().contains("dotprompt_content") {
            "dotprompt_content"
        } else {
            "body"
        };
        AdminError::invalid(field, e.to_string())
    })?;
    let chat = test_request(&t).map_err(|e| match e {
        PromptError::Invalid(m) => AdminError::invalid("dotprompt_content", m),
        e => refused(e),
    })?;
    let body = serde_json::to_vec(&chat).map_err(|e| AdminError::invalid("body", e.to_string()))?;
    let who = For {
        principal,
        headers: parts.headers,
        peer,
    };
    // boxed: the LLM stages' large future is placed once
    Ok(Box::pin(made::call(state, &who, Expect::Chat, Bytes::from(body))).await)
}

/// The chat request `/prompts/test` makes: the front matter's model and parameters, the
/// rendered messages (or their system messages and `conversation_history`).
fn test_request(t: &TestBody) -> Result<Value, PromptError> {
    let template = Dotprompt::parse(&t.dotprompt_content)?;
    let model = template
        .model()?
        .ok_or_else(|| PromptError::invalid("Model is required in dotprompt metadata"))?
        .to_string();
    let vars = t.prompt_variables.clone().unwrap_or_default();
    if let Some(schema) = template.schema() {
        render::check_schema(schema, &vars)?;
    }
    let rendered = messages::messages(&render::render(&template.content, &vars)?);
    if rendered.is_empty() {
        return Err(PromptError::invalid("No messages found in rendered prompt"));
    }
    let messages = match &t.conversation_history {
        Some(history) if !history.is_empty() => {
            let mut m: Vec<Value> = rendered
                .into_iter()
                .filter(|m| m["role"] == "system")
                .collect();
            m.extend(history.iter().cloned());
            m
        }
        _ => rendered,
    };
    let mut body = template.params();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(t.stream.unwrap_or(true)));
    Ok(Value::Object(body))
}
