//! The request path of an LLM call (`crate::dispatch` routes it here through [`serve`]): its
//! stages run in order (`llm`), each a function in its own file, over one [`RequestCtx`] (the
//! request as read, `read::Call`, goes from stage to stage):
//!
//! 1. `read` (read.rs): authenticate the caller (and its `allowed_routes`), read the body
//!    within the size limit and parse it (a multipart upload up to its `model` field);
//!    a request naming a prompt template (`prompt_id`) is rendered into its messages
//!    (prompt.rs) before anything else reads it;
//! 2. `model` (model.rs): the model group asked for (through the caller's aliases); a
//!    Responses API `previous_response_id` checked and its deployment pinned; a chat request
//!    naming several groups is served by several.rs, which runs the stages below once per group;
//! 3. `authorize` (authorize.rs): blocks, model access, end user, cache controls;
//! 4. `guard` (guard.rs): the guardrails that apply chosen, the `pre_call` ones run (a block
//!    answers here, a rewrite replaces the body); `during_call` ones run beside `attempts`,
//!    `post_call` ones on the answer, `logging_only` ones on what is logged;
//! 5. `model budget` (model_budget.rs): model budgets, switching to a key's budget fallback;
//! 6. `route` (route.rs): the first deployment (pinned, the router's, or a fallback group's);
//! 7. `limits` (limits.rs): rate limits, with priority reservation;
//! 8. `budget` (budget.rs): the worst case reserved on every budget, the SpendLogs row started;
//! 9. `cache` (cached.rs): a hit answers here, a miss notes what to store;
//! 10. `attempts` (attempts.rs): each attempt (call.rs) converts the client's format, answers a
//!     mock, or calls the provider (translated.rs, native.rs, rerank.rs, or compatible.rs for an
//!     OpenAI-compatible one); a stream's relay is watched by watch.rs; failures are retried
//!     and fall back;
//! 11. `respond` (respond.rs): a whole answer stored in the cache, translated into the
//!     client's format, the `x-tianji-*` headers added;
//! 12. `post` (post.rs): when the request's record drops (at the end of the answer, or of its
//!     stream), the access log line and the spend ticket (cost booked, row queued).
//!
//! Side calls (side.rs: files, batches, search, pass-through, ...) are admitted by the same
//! `authorize`, `limits` and `budget` stages; A2A agent calls go through agent.rs (a
//! model-backed agent's chat completion runs the stages from `authorize` on).
//! docs/architecture.md describes each stage.

pub mod agent;
mod answer;
mod attempts;
mod authorize;
mod budget;
pub mod cached;
mod call;
mod compatible;
pub mod controls;
mod guard;
mod limits;
pub mod made;
pub mod mcp_call;
pub mod mcp_tools;
pub mod members;
pub mod mock;
mod model;
mod model_budget;
pub mod multipart;
mod native;
pub mod ocr;
pub mod parse;
pub mod post;
pub mod preview;
pub mod probe;
mod prompt;
mod read;
mod rerank;
mod respond;
pub mod rewrite;
mod route;
mod several;
mod side;
mod skills;
mod traced;
mod translated;
pub use native::{count_tokens, gemini_count_tokens};
pub use translated::auth_headers;
mod upload;
pub mod validate;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Request, Response};
use tokio::time::Instant;
use uuid::Uuid;

use crate::body::Body;
use crate::error::GatewayError;
use crate::request_body::RequestBody;
use crate::router::Deployment;
use crate::state::AppState;
use parse::Expect;
use post::Completion;
pub use read::authenticated_body;
pub use side::{Side, side_call, side_call_reserving};

/// Per-request state passed through the stages: what they decide, and the request's record.
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
    /// Retries the last failure allowed (else those a failure would have).
    pub max_retries: u32,
    /// The time limit of the last attempt.
    pub timeout: Option<Duration>,
    /// The response cache's part (key, hit), when it applies.
    pub cache: Option<cached::CacheUse>,
    /// A miss's answer to store once complete (for streams, taken by the relay's observer).
    pub cache_pending: Option<crate::cache::Pending>,
    /// The caller is a proxy admin: its error messages may name the upstream URL (redacted).
    pub admin: bool,
    /// The model group asked for (set by `model`; a budget fallback or a fallback group may
    /// replace it), until the attempts stage takes it over.
    pub model: String,
    /// The name asked for, when the team's `model_aliases` mapped it to `model`.
    pub team_alias: Option<String>,
    /// The end user the request is for (`user` in the body, else `x-tianji-end-user-id`).
    pub end_user: Option<String>,
    /// The regions its deployments must be in (`allowed_model_region`; empty: any).
    pub regions: Vec<String>,
    /// The deployment a Responses API `previous_response_id` pins the request to.
    pub pinned: Option<String>,
    /// The request's response cache controls (with a cache).
    pub controls: Option<crate::cache::Controls>,
    /// The request's guardrails, when any apply.
    pub guard: Option<guard::Guard>,
    /// The A2A agent the call is made for (its limits, its SpendLogs row).
    pub agent: Option<agent::AgentCall>,
    /// The trace span of the stage running (with traces on).
    stage: Option<Box<crate::observability::traces::Stage>>,
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
            max_retries: 0,
            timeout: None,
            cache: None,
            cache_pending: None,
            admin: false,
            model: String::new(),
            team_alias: None,
            end_user: None,
            regions: Vec::new(),
            pinned: None,
            controls: None,
            guard: None,
            agent: None,
            stage: None,
        }
    }

    /// Trace stage `name` (ending the previous one's span); nothing without traces.
    fn enter(&mut self, name: &'static str) {
        self.stage = None;
        self.stage = (self.completion.trace.as_ref()).map(|t| Box::new(t.child(name)));
    }
}

impl RequestCtx {
    /// Move the record into a stream relay, with the time the provider took to answer.
    pub fn hand_off(&mut self) -> Completion {
        self.completion.upstream = Some(self.upstream_elapsed);
        self.completion.hand_off()
    }
}

/// Serve one LLM call (`crate::dispatch` picked the route): its stages over a new
/// [`RequestCtx`], then its answer (or error) as the client reads it. Never fails: errors
/// become JSON error responses.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments in its future beside the copies its body moves them into"
)]
pub fn serve(
    state: &AppState,
    req: Request<RequestBody>,
    expect: Expect,
    path_model: Option<String>,
    peer: SocketAddr,
) -> impl std::future::Future<Output = Response<Body>> {
    async move {
        let mut ctx = RequestCtx::new(route_name(expect));
        traced::start(state, req.headers(), &mut ctx);
        ctx.enter("auth");
        if let Some(m) = &state.metrics {
            ctx.completion.metrics = Some(Box::new((m.start(), Default::default())));
        }
        // The stages' futures are boxed where they are large: async code moves a future (memcpy)
        // at every level it is awaited through, so a request's state machine is kept small.
        let result = match Box::pin(asked(state, req, expect, path_model, peer, &mut ctx)).await {
            Ok(call) if mcp_tools::wanted(&call) => {
                return Box::pin(mcp_tools::serve(state, call, ctx)).await;
            }
            Ok(call) if several::wanted(&call, &ctx.model) => {
                return Box::pin(several::serve(state, call, ctx)).await;
            }
            Ok(call) => Box::pin(llm(state, call, &mut ctx)).await,
            Err(e) => Err(e),
        };
        ctx.stage = None;
        respond::respond(result, &mut ctx).await
    }
}

/// The first stages of an LLM request: what it asks for.
async fn asked(
    state: &AppState,
    req: Request<RequestBody>,
    expect: Expect,
    path_model: Option<String>,
    peer: SocketAddr,
    ctx: &mut RequestCtx,
) -> Result<read::Call, GatewayError> {
    let mut call = read::read(state, req, expect, peer, ctx).await?;
    prompt::apply(state, &mut call)?;
    model::name(state, &mut call, path_model, ctx)?;
    Ok(call)
}

/// The rest of the stages of an LLM request, in order (see the module doc).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments in its future beside the copies its body moves them into"
)]
fn llm(
    state: &AppState,
    mut call: read::Call,
    ctx: &mut RequestCtx,
) -> impl std::future::Future<Output = Result<Response<Body>, GatewayError>> {
    async move {
        traced::caller(&call.principal, ctx);
        let granted = Box::pin(authorize::authorize(state, &call, ctx)).await?;
        if !state.guardrails.load().is_empty() {
            ctx.enter("guardrails");
        }
        guard::pre_call(state, &mut call, ctx).await?;
        let granted = Box::pin(model_budget::admit(state, &call, granted, ctx)).await?;
        ctx.enter("router");
        let routed = Box::pin(route::route(state, &call, ctx)).await?;
        ctx.enter("limits");
        limits::count(state, &call, &routed, granted.end_user.as_deref(), ctx).await?;
        budget::reserve_for(state, &call, &routed.dep, granted.lines, ctx).await?;
        guard::mask_logged_request(ctx).await;
        ctx.enter("cache");
        if let Some(hit) = cached::check(state, &mut call, ctx).await {
            return Ok(hit);
        }
        ctx.stage = None;
        let result = match guard::during(ctx) {
            // boxed: requests without `during_call` guardrails do not carry (or copy) the join
            Some(check) => {
                let ctx = &mut *ctx;
                Box::pin(async move {
                    let (result, checked) =
                        tokio::join!(Box::pin(attempts::run(state, call, routed, ctx)), check);
                    // a block discards the answer (a stream is cut before its first byte)
                    checked.and(result)
                })
                .await
            }
            None => Box::pin(attempts::run(state, call, routed, ctx)).await,
        };
        let result = guard::answer(ctx, result).await;
        // a whole answer is stored now (a stream's is stored by its relay's observer, at its end)
        cached::store_whole(&result, ctx);
        result
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
        Expect::Ocr => "ocr",
    }
}
