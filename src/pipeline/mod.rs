//! The request path of an LLM call (`crate::dispatch` routes it here through [`serve`]): its
//! stages run in order over one [`RequestCtx`]: authenticate (and `allowed_routes`) -> read and
//! parse the body -> authorize (access, model budgets) -> route (pick a deployment) -> rate limits -> budget reservation ->
//! cache -> (mock) -> translate -> upstream -> relay -> post (spend). docs/architecture.md
//! describes each.

mod answer;
mod attempts;
pub mod cached;
pub mod members;
pub mod mock;
pub mod multipart;
mod native;
pub use native::{count_tokens, gemini_count_tokens};
pub mod parse;
pub mod post;
pub mod probe;
mod rerank;
mod respond;
pub mod rewrite;
mod side;
mod translated;
pub use translated::auth_headers;
mod upload;
pub mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Request, Response, header};
use http_body_util::BodyExt;
use tokio::time::Instant;
use uuid::Uuid;

use crate::body::Body;
use crate::error::GatewayError;
use crate::request_body::RequestBody;
use crate::router::Deployment;
use crate::state::AppState;
use crate::upstream::{self, UpstreamError, relay::RelayBody, sse};
use parse::{Expect, RequestError};
use post::Completion;
pub use side::{Side, side_call};

/// Per-request state passed through the stages.
pub struct RequestCtx {
    pub call_id: Uuid,
    pub started: Instant,
    /// Wall clock at the start (SpendLogs `startTime`).
    pub wall_start: SystemTime,
    /// Time spent waiting for the provider (for the overhead header).
    pub upstream_elapsed: Duration,
    /// The deployment chosen by the route stage.
    pub deployment: Option<Arc<Deployment>>,
    /// `x-ratelimit-*` headers of the limits the request was counted on.
    pub rate_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub completion: Completion,
    /// The client's own answer format, when it is not OpenAI's.
    pub outward: Option<answer::Outward>,
    /// Retries (within a model group) and fallbacks (to other groups) made.
    pub attempted_retries: u32,
    pub attempted_fallbacks: u32,
    /// The response cache's part (key, hit), when it applies.
    pub cache: Option<cached::CacheUse>,
    /// A miss's answer to store once complete (taken by the stream relay for streams).
    pub cache_pending: Option<crate::cache::Pending>,
    /// The caller is a proxy admin: its error messages may name the upstream URL (redacted).
    pub admin: bool,
}

impl RequestCtx {
    fn new(route: &'static str) -> Self {
        let call_id = Uuid::now_v7();
        let started = Instant::now();
        Self {
            call_id,
            started,
            wall_start: SystemTime::now(),
            upstream_elapsed: Duration::ZERO,
            deployment: None,
            rate_headers: Vec::new(),
            completion: Completion::new(call_id, started, route),
            outward: None,
            attempted_retries: 0,
            attempted_fallbacks: 0,
            cache: None,
            cache_pending: None,
            admin: false,
        }
    }
}

/// Serve one LLM call (`crate::dispatch` picked the route): its stages over a new
/// [`RequestCtx`], the answer in the client's format. Never fails: errors become JSON error
/// responses.
pub async fn serve(
    state: &AppState,
    req: Request<RequestBody>,
    expect: Expect,
    path_model: Option<String>,
    peer: SocketAddr,
) -> Response<Body> {
    let mut ctx = RequestCtx::new(route_name(expect));
    let result = llm(state, req, expect, path_model, peer, &mut ctx).await;
    let mut resp = answer_as_client(&ctx, result).await.unwrap_or_else(|e| {
        ctx.completion.error = Some(e.to_string());
        e.into_response_for(ctx.admin)
    });
    ctx.completion.status = resp.status().as_u16();
    respond::decorate(&mut resp, &ctx);
    resp
}

/// A whole answer translated into the client's format (Anthropic, Gemini) when it is not
/// OpenAI's.
async fn answer_as_client(
    ctx: &RequestCtx,
    result: Result<Response<Body>, GatewayError>,
) -> Result<Response<Body>, GatewayError> {
    match (ctx.outward, result) {
        (Some(out), Ok(resp)) => {
            let model = ctx.completion.model.clone().unwrap_or_default();
            Ok(out.answer(resp, &model).await)
        }
        (_, r) => r,
    }
}

fn route_name(e: Expect) -> &'static str {
    match e {
        Expect::Chat => "chat_completions",
        Expect::Completion => "completions",
        Expect::Embedding => "embeddings",
        Expect::Responses => "responses",
        Expect::Messages => "messages",
        Expect::Gemini { .. } => "generate_content",
        Expect::ImageGeneration => "image_generation",
        Expect::Speech => "speech",
        Expect::Moderation => "moderation",
        Expect::Rerank => "rerank",
        Expect::ImageEdit => "image_edit",
        Expect::ImageVariation => "image_variation",
        Expect::Transcription => "transcription",
        Expect::Translation => "translation",
    }
}

/// The model group `/v1/moderations` uses when the request names none.
const DEFAULT_MODERATION: &str = "omni-moderation-latest";

/// SpendLogs `call_type` and `endpoint` of a route (LiteLLM's names).
fn call_type(e: Expect) -> (&'static str, &'static str) {
    match e {
        Expect::Chat => ("acompletion", "/v1/chat/completions"),
        Expect::Completion => ("atext_completion", "/v1/completions"),
        Expect::Embedding => ("aembedding", "/v1/embeddings"),
        Expect::Responses => ("aresponses", "/v1/responses"),
        Expect::Messages => ("anthropic_messages", "/v1/messages"),
        Expect::Gemini { .. } => ("agenerate_content", "/v1beta/models:generateContent"),
        Expect::ImageGeneration => ("aimage_generation", "/v1/images/generations"),
        Expect::Speech => ("aspeech", "/v1/audio/speech"),
        Expect::Moderation => ("amoderation", "/v1/moderations"),
        Expect::Rerank => ("arerank", "/v1/rerank"),
        Expect::ImageEdit => ("aimage_edit", "/v1/images/edits"),
        Expect::ImageVariation => ("aimage_variation", "/v1/images/variations"),
        Expect::Transcription => ("atranscription", "/v1/audio/transcriptions"),
        Expect::Translation => ("atranslation", "/v1/audio/translations"),
    }
}

async fn llm(
    state: &AppState,
    req: Request<RequestBody>,
    expect: Expect,
    path_model: Option<String>,
    peer: SocketAddr,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    // authenticate (before reading the body), parse
    let (principal, parts, mut parsed, upload) = if expect.is_multipart() {
        let (principal, parts, up) = upload::read(state, req).await?;
        let parsed = parse::ParsedRequest::upload(up.model.clone());
        (principal, parts, parsed, Some(up))
    } else {
        let (principal, parts, raw) = authenticated_body(state, req).await?;
        (
            principal,
            parts,
            parse::parse_with(raw, expect, state.cache.is_some())?,
            None,
        )
    };
    ctx.admin = principal.is_admin();
    // Responses API: no `stream_options` (usage comes in its final event); an earlier response
    // named by `previous_response_id` must belong to the caller and pins its deployment.
    let mut pinned = None;
    if expect == Expect::Responses {
        parsed.include_usage = Some(true);
        if memchr::memmem::find(&parsed.raw, b"\"previous_response_id\"").is_some() {
            let (p, dep) = previous_response(state, &principal, parsed)?;
            parsed = p;
            pinned = dep;
        }
    }
    let model = path_model
        .or_else(|| parsed.model.clone())
        .filter(|m| !m.is_empty())
        // OpenAI's default moderation model, when a model group of that name exists
        .or_else(|| (expect == Expect::Moderation).then(|| DEFAULT_MODERATION.to_string()))
        .ok_or(RequestError::Missing("model"))?;
    if let Expect::Gemini { stream } = expect {
        parsed.stream = stream;
    }
    ctx.completion.stream = parsed.stream;
    ctx.completion.prompt_estimate = parsed.raw.len() as u64 / 4;

    // route
    let end_user = parsed.end_user.as_deref().or_else(|| {
        parts
            .headers
            .get("x-tianji-end-user-id")
            .and_then(|v| v.to_str().ok())
    });
    let table = state.models.load_full();
    use crate::auth::access::{Ask, authorize};
    let dir = state.auth.directory();
    let groups = &*table;
    let ask = Ask {
        model: &model,
        end_user,
        groups,
    };
    let mut granted = authorize(dir, &principal, ask).await?;
    // per-request cache controls (body and headers), each one the key may set
    let controls = match &state.cache {
        Some(_) => Some(crate::cache::Controls::of(
            &parsed.raw,
            !parsed.cache_controls.is_empty(),
            &parts.headers,
        )?),
        None => None,
    };
    let header_controls = controls.as_ref().map_or(&[][..], |c| &c.header_names[..]);
    crate::auth::access::check_cache_controls(
        &principal,
        (parsed.cache_controls.iter().map(String::as_str)).chain(header_controls.iter().copied()),
    )?;

    // model budgets; a spent one switches to the key's first budget fallback within budget
    let mb = &state.model_budgets;
    let budgets = |model: &str, g: &crate::auth::access::Granted| {
        mb.applicable(&principal, model, g.end_user.as_deref(), &*table)
    };
    let mut model = model;
    match mb.admit(budgets(&model, &granted), &model) {
        Ok(b) => ctx.completion.model_budget = b,
        Err(spent) => {
            let mut switched = false;
            for fb in crate::limits::model_budget::fallbacks(&principal, &model) {
                let ask = Ask {
                    model: &fb,
                    end_user,
                    groups,
                };
                let Ok(g) = authorize(dir, &principal, ask).await else {
                    continue;
                };
                if table.resolve(&fb).is_err() {
                    continue;
                }
                if let Ok(b) = mb.admit(budgets(&fb, &g), &fb) {
                    ctx.completion.model_budget = b;
                    (model, granted) = (fb, g);
                    switched = true;
                    break;
                }
            }
            if !switched {
                return Err(spent.into());
            }
        }
    }
    let resolved = table.resolve(&model)?;
    let pinned = pinned.and_then(|id| resolved.group.iter().find(|d| d.id == id).cloned());
    let policy = state.router.policy();
    let tags = attempts::request_tags(&policy, &parsed, &parts.headers);
    let ask = crate::router::balancer::Ask {
        tags: &tags,
        prompt_tokens: parsed.raw.len() as u64 / 4,
    };
    let (model, group, dep, fell_back) = attempts::first(
        state,
        &policy,
        &principal,
        end_user,
        &model,
        &resolved.group,
        pinned,
        ask,
    )
    .await?;
    // counted in flight at once, so concurrent requests see it (least-busy)
    ctx.completion.in_flight = Some(crate::router::balancer::InFlight::new(&dep.stats));
    ctx.attempted_fallbacks = fell_back;
    ctx.completion.model = Some(model.clone());
    ctx.completion.deployment = Some(dep.clone());
    ctx.deployment = Some(dep.clone());

    // limits: one Redis call when any applies, none otherwise
    let mut ds = crate::limits::descriptors(&crate::limits::Subject {
        principal: &principal,
        model: &model,
        end_user: end_user.map(|id| (id, granted.end_user.as_deref())),
        deployment: Some(&dep),
        global_parallel: state.global_max_parallel,
    });
    let mut pool = None;
    if let Some(p) = &state.priorities {
        // first, so a model at capacity answers with the dynamic limiter's message
        let (mut first, info) = p.descriptors(&principal, &model, &group, 0);
        first.append(&mut ds);
        ds = first;
        pool = info;
    }
    if !ds.is_empty() {
        let estimate = parsed.raw.len() as u64 / 4 + parsed.max_tokens.unwrap_or(0);
        if let Some(mut held) = state.limits.acquire(ds, estimate).await? {
            ctx.rate_headers = std::mem::take(&mut held.headers);
            ctx.completion.limits = Some(held);
        }
        if let Some(pool) = pool
            && let Ok(v) = http::HeaderValue::from_str(&pool.priority)
        {
            ctx.rate_headers
                .push((http::HeaderName::from_static("x-tianji-priority"), v));
            ctx.rate_headers.push((
                http::HeaderName::from_static("x-tianji-rate-limiter-version"),
                http::HeaderValue::from_static("v3"),
            ));
        }
    }

    // budget: reserve the worst case on every budget that applies, then take a spend-log slot
    let worst = dep.price.as_ref().map_or(0.0, |p| {
        crate::spend::cost::worst_case(p, parsed.raw.len() as u64 / 4, parsed.max_tokens)
    });
    let reservation = state
        .spend
        .ledger
        .admit(granted.lines, worst)
        .map_err(|(e, lines)| {
            crate::auth::access::budget_error(
                state.auth.budget_status,
                &principal,
                &lines[e.index],
                e.current,
            )
        })?;
    let slot = state.spend.slot().await;
    let row = slot.is_some().then(|| {
        spend_row(
            state, &principal, &parsed, &model, end_user, expect, peer, ctx,
        )
    });
    if state.spend.store_prompts {
        ctx.completion.bodies = Some((parsed.raw.clone(), None));
    }
    ctx.completion.spend = Some((
        crate::spend::Ticket {
            spend: state.spend.clone(),
            slot,
            reservation,
        },
        row,
    ));

    // the response cache: a hit answers here, a miss notes what to store
    let cache_plan = match (&state.cache, controls) {
        (Some(c), Some(controls)) if upload.is_none() && parsed.mock_response.is_none() => {
            let caller = crate::cache::key::Caller {
                key: principal_key_hash(state, &principal),
                team: principal_team(&principal),
            };
            let canonical = parsed.canonical.take();
            c.plan(
                call_type(expect).0,
                &model,
                &parsed.raw,
                canonical.as_deref(),
                controls,
                caller,
            )
            .map(|p| (c.clone(), p))
        }
        _ => None,
    };
    if let Some((cache, plan)) = cache_plan {
        ctx.completion.cache_key = Some(plan.key.clone());
        match cached::lookup(state, &cache, plan, &parsed, ctx).await {
            cached::Looked::Hit(resp) => return Ok(resp),
            cached::Looked::Miss(pending) => ctx.cache_pending = pending,
        }
    }

    let end_user = end_user.map(str::to_string);
    let result = attempts::run(
        state,
        attempts::Request {
            parsed,
            expect,
            model,
            principal: &principal,
            headers: &parts.headers,
            end_user,
            upload,
            group,
            dep,
            policy,
            tags,
        },
        ctx,
    )
    .await;
    // a whole answer is stored now (a stream's relay stores it at its end)
    if let (Some(pending), Ok(resp)) = (ctx.cache_pending.take(), &result) {
        cached::store_whole(pending, resp, ctx);
    }
    result
}

/// The sha256 hex of the caller's key (the master key's for admins; "" on an open gateway).
fn principal_key_hash<'a>(state: &'a AppState, principal: &'a crate::auth::Principal) -> &'a str {
    use crate::auth::Principal;
    match principal {
        Principal::Key(k) => &k.key.token,
        Principal::Master => state.auth.master_hash().map_or("", |h| h),
        Principal::Open => "",
    }
}

/// The caller's team, if its key has one.
fn principal_team(principal: &crate::auth::Principal) -> Option<&str> {
    match principal {
        crate::auth::Principal::Key(k) => k.key.team_id.as_deref(),
        _ => None,
    }
}

/// One attempt of an admitted request on `dep` (a deployment of group `model`): the client's
/// format converted for it, then the call (or its mock).
#[allow(clippy::too_many_arguments)]
async fn dispatch(
    state: &AppState,
    dep: &Arc<Deployment>,
    mut parsed: parse::ParsedRequest,
    mut expect: Expect,
    model: &str,
    principal: &crate::auth::Principal,
    headers: &http::HeaderMap,
    upload: Option<multipart::Upload>,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let dep = dep.clone();
    // a client speaking Anthropic Messages: native to Anthropic, through chat to the rest
    if expect == Expect::Messages {
        let mocked = parsed.mock_response.is_some() || dep.mock_response.is_some();
        if let (Some(uri), false) = (dep.anthropic_messages(), mocked) {
            return native::anthropic_messages(state, &dep, uri, &parsed, headers, ctx).await;
        }
        let v: serde_json::Value = serde_json::from_slice(&parsed.raw)
            .map_err(|e| RequestError::InvalidJson(e.to_string()))?;
        let mut chat = crate::providers::anthropic::ingress::to_chat(&v, model)
            .map_err(|e| RequestError::BadValue(e.to_string()))?;
        if matches!(dep.wire, crate::router::wire::Wire::OpenAi) {
            crate::providers::anthropic::ingress::strip_cache_control(&mut chat);
        }
        let bytes = serde_json::to_vec(&chat).map_err(|e| RequestError::BadValue(e.to_string()))?;
        let mock = parsed.mock_response.take();
        parsed = parse::parse(bytes.into(), Expect::Chat)?;
        parsed.mock_response = mock;
        expect = Expect::Chat;
        ctx.outward = Some(answer::Outward::Anthropic);
    }

    // a client speaking Gemini: native to Gemini and Vertex AI, through chat to the rest
    if let Expect::Gemini { stream } = expect {
        let mocked = parsed.mock_response.is_some() || dep.mock_response.is_some();
        if let (crate::router::wire::Wire::Gemini(g), false) = (&dep.wire, mocked) {
            return native::gemini_generate(state, &dep, g, &parsed, ctx).await;
        }
        let v: serde_json::Value = serde_json::from_slice(&parsed.raw)
            .map_err(|e| RequestError::InvalidJson(e.to_string()))?;
        let chat = crate::providers::gemini::native::to_chat(&v, model, stream)
            .map_err(|e| RequestError::BadValue(e.to_string()))?;
        let bytes = serde_json::to_vec(&chat).map_err(|e| RequestError::BadValue(e.to_string()))?;
        let mock = parsed.mock_response.take();
        parsed = parse::parse(bytes.into(), Expect::Chat)?;
        parsed.mock_response = mock;
        expect = Expect::Chat;
        ctx.outward = Some(answer::Outward::Gemini);
    }

    // mock
    if let Some(text) = parsed
        .mock_response
        .as_deref()
        .or(dep.mock_response.as_deref())
    {
        let id = ctx.call_id.simple().to_string();
        let (mut resp, usage) = mock::respond(expect, &parsed, model, text, &id);
        ctx.completion.usage = Some(usage);
        if expect == Expect::Responses {
            resp = seal_mocked(state, resp, principal, &dep.id).await;
        }
        return Ok(resp);
    }

    if expect == Expect::Rerank {
        return rerank::rerank(state, &dep, &parsed, ctx).await;
    }

    // translate
    if translated::handles(&dep) {
        match expect {
            Expect::Chat => return translated::chat(state, &dep, &parsed, ctx).await,
            Expect::Embedding => return translated::embeddings(state, &dep, &parsed, ctx).await,
            _ => {}
        }
    }
    let (spec, endpoints) = match (&dep.spec, &dep.endpoints) {
        (Some(spec), Some(ep)) => (spec, ep),
        _ => {
            let kind = &dep.provider;
            return Err(GatewayError::NotImplemented(format!(
                "Provider '{}' (model={model}) needs a translation module that this build does not include yet",
                kind.name()
            )));
        }
    };
    if matches!(spec.name.as_str(), "mistral" | "codestral")
        && matches!(expect, Expect::Chat | Expect::Embedding)
    {
        parsed = translated::for_mistral(&parsed, expect)?;
    }
    let other;
    let uri = match expect {
        Expect::Chat => &endpoints.chat,
        Expect::Completion => &endpoints.completions,
        Expect::Embedding => &endpoints.embeddings,
        Expect::Responses => &endpoints.responses,
        Expect::Messages | Expect::Gemini { .. } => &endpoints.chat,
        _ => {
            let path = match expect {
                Expect::ImageGeneration => "/images/generations",
                Expect::Speech => "/audio/speech",
                Expect::Rerank => "/rerank",
                Expect::ImageEdit => "/images/edits",
                Expect::ImageVariation => "/images/variations",
                Expect::Transcription => "/audio/transcriptions",
                Expect::Translation => "/audio/translations",
                _ => "/moderations",
            };
            other = endpoints
                .at(path)
                .ok_or_else(|| GatewayError::Internal(format!("bad URL for {path}")))?;
            &other
        }
    };
    if let Some(up) = upload {
        return upload::forward(state, &dep, uri, up, headers, ctx).await;
    }
    let body = rewrite::rewrite(&parsed, spec, &dep.upstream_model_json)?;

    // upstream + relay
    let t0 = Instant::now();
    if parsed.stream {
        let call = upstream::post(&state.client, &dep, uri, &body.parts, true);
        let resp = tokio::time::timeout(dep.stream_timeout, call)
            .await
            .map_err(|_| UpstreamError::StreamTimeout(dep.stream_timeout.as_secs_f64()))??;
        ctx.upstream_elapsed = t0.elapsed();
        if !resp.status().is_success() {
            return Err(UpstreamError::from_response(resp).await.into());
        }
        let (head, incoming) = resp.into_parts();
        ctx.completion.status = head.status.as_u16();
        let completion = ctx.completion.hand_off();
        let sealer = (expect == Expect::Responses)
            .then(|| state.response_ids.event_sealer(principal, &dep.id))
            .flatten();
        let relay = RelayBody::new(
            incoming,
            body.drop_usage_chunk,
            dep.stream_timeout,
            completion,
            state.streams.signal(),
        )
        .sealing(sealer)
        .answering_as(ctx.outward.map(|o| o.stream(&dep.model_name)))
        .recording(ctx.cache_pending.take());
        let mut out = Response::new(Body::Relay(Box::new(relay)));
        copy_content_type(&head, &mut out, "text/event-stream");
        out.headers_mut().insert(
            header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-cache"),
        );
        return Ok(out);
    }

    // audio: the bytes go to the client as they come
    if expect == Expect::Speech {
        let call = upstream::post(&state.client, &dep, uri, &body.parts, false);
        let resp = tokio::time::timeout(dep.timeout, call)
            .await
            .map_err(|_| UpstreamError::Timeout(dep.timeout.as_secs_f64()))??;
        ctx.upstream_elapsed = t0.elapsed();
        if !resp.status().is_success() {
            return Err(UpstreamError::from_response(resp).await.into());
        }
        let (head, incoming) = resp.into_parts();
        ctx.completion.usage = Some(sse::Usage::default());
        let mut out = Response::new(Body::Stream(incoming));
        *out.status_mut() = head.status;
        copy_content_type(&head, &mut out, "audio/mpeg");
        return Ok(out);
    }

    let call = async {
        let resp = upstream::post(&state.client, &dep, uri, &body.parts, false).await?;
        upstream::ok_body(resp).await
    };
    let (head, bytes) = tokio::time::timeout(dep.timeout, call)
        .await
        .map_err(|_| UpstreamError::Timeout(dep.timeout.as_secs_f64()))??;
    ctx.upstream_elapsed = t0.elapsed();
    // every answer read whole here is JSON: one that is not is the provider's failure
    ctx.completion.usage =
        sse::usage_of_json_body(&bytes).map_err(|e| upstream::invalid_json(head.status, &e))?;
    if expect == Expect::ImageGeneration {
        // priced per image (and by tokens, for models that report them)
        ctx.completion.extra.images_out = images_in(&bytes);
        ctx.completion.usage.get_or_insert_with(sse::Usage::default);
    }
    let bytes = match expect {
        Expect::Responses => state
            .response_ids
            .seal_body(&bytes, principal, &dep.id)
            .unwrap_or(bytes),
        _ => bytes,
    };
    if let Some((_, resp)) = ctx.completion.bodies.as_mut() {
        *resp = Some(bytes.clone());
    }
    let mut out = Response::new(Body::full(bytes));
    *out.status_mut() = head.status;
    copy_content_type(&head, &mut out, "application/json");
    Ok(out)
}

/// How many images an images API answer holds (`data`).
fn images_in(body: &[u8]) -> u32 {
    #[derive(serde::Deserialize)]
    struct Images {
        #[serde(default)]
        data: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Images>(body)
        .map_or(0, |i| u32::try_from(i.data.len()).unwrap_or(u32::MAX))
}

/// Authenticate the caller (and its `allowed_routes`), then read the body within
/// `max_request_size_mb`.
pub async fn authenticated_body(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<(crate::auth::Principal, http::request::Parts, bytes::Bytes), GatewayError> {
    let principal = state.auth.authenticate(req.headers()).await?;
    crate::auth::access::check_route(&principal, req.uri().path())?;
    let (parts, body) = req.into_parts();
    let raw = parse::read_declared(&parts.headers, body, state.max_body_bytes).await?;
    Ok((principal, parts, raw))
}

pub use crate::util::query::query_param;

/// Check the caller owns `previous_response_id` and put the provider's id in the body; also
/// the deployment holding it, when the id says.
fn previous_response(
    state: &AppState,
    principal: &crate::auth::Principal,
    parsed: parse::ParsedRequest,
) -> Result<(parse::ParsedRequest, Option<String>), GatewayError> {
    let mut v: serde_json::Value = serde_json::from_slice(&parsed.raw)
        .map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    let Some(id) = v
        .get("previous_response_id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
    else {
        return Ok((parsed, None));
    };
    let (raw, model_id) = state.response_ids.check(&id, principal)?;
    v["previous_response_id"] = serde_json::Value::String(raw);
    let bytes = serde_json::to_vec(&v).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    let mut p = parse::parse(bytes.into(), Expect::Responses)?;
    p.include_usage = Some(true);
    Ok((p, model_id))
}

/// A mocked Responses API answer with its id sealed like a real one.
async fn seal_mocked(
    state: &AppState,
    resp: Response<Body>,
    principal: &crate::auth::Principal,
    model_id: &str,
) -> Response<Body> {
    let (head, body) = resp.into_parts();
    let Ok(c) = body.collect().await else {
        return Response::from_parts(head, Body::full(bytes::Bytes::new()));
    };
    let bytes = c.to_bytes();
    let bytes = state
        .response_ids
        .seal_body(&bytes, principal, model_id)
        .unwrap_or(bytes);
    Response::from_parts(head, Body::full(bytes))
}

/// The provider's content type, or `default` when it sent none.
fn copy_content_type(
    head: &http::response::Parts,
    out: &mut Response<Body>,
    default: &'static str,
) {
    let ct = head
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(http::HeaderValue::from_static(default));
    out.headers_mut().insert(header::CONTENT_TYPE, ct);
}

/// The SpendLogs row as far as it is known at admission (the post stage fills in the rest).
#[allow(clippy::too_many_arguments)]
fn spend_row(
    state: &AppState,
    principal: &crate::auth::Principal,
    parsed: &parse::ParsedRequest,
    model: &str,
    end_user: Option<&str>,
    expect: Expect,
    peer: SocketAddr,
    ctx: &RequestCtx,
) -> Box<crate::spend::record::SpendRow> {
    use crate::spend::record::{Caller, SpendRow};
    let (call_type, endpoint) = call_type(expect);
    let caller = Caller::of(principal, state.auth.master_hash());
    let row = SpendRow {
        request_id: ctx.call_id,
        call_type,
        endpoint,
        caller,
        start_time: crate::spend::unix(ctx.wall_start),
        model_group: model.to_string(),
        end_user: end_user.map(str::to_string),
        request_tags: parsed.tags.clone(),
        requester_ip_address: Some(peer.ip()),
        ..Default::default()
    };
    Box::new(row)
}
