//! Stage `limits`: the request counts on every rate limit that applies to it (key, user, team,
//! end user, model, deployment, global parallel requests): one Redis call when any applies,
//! none otherwise. With priority reservation the dynamic limiter's limits come first, so a
//! model at capacity answers with its message. Side calls count through [`acquire`] too.

use http::{HeaderName, HeaderValue};

use super::RequestCtx;
use super::read::Call;
use super::route::Routed;
use crate::auth::EndUserRecord;
use crate::error::GatewayError;
use crate::limits::{Descriptor, Held, Subject};
use crate::router::Group;
use crate::state::AppState;

/// Count the LLM request, reserving its prompt's estimate and `max_tokens` on token limits.
pub async fn count(
    state: &AppState,
    call: &Call,
    routed: &Routed,
    end_user_record: Option<&EndUserRecord>,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let parsed = &call.parsed;
    let subject = Subject {
        principal: &call.principal,
        model: &ctx.model,
        end_user: (ctx.end_user.as_deref()).map(|id| (id, end_user_record)),
        deployment: Some(&routed.dep),
        global_parallel: state.global_max_parallel,
    };
    let tokens = parsed.raw.len() as u64 / 4 + parsed.max_tokens.unwrap_or(0);
    // an A2A agent's own limits, with the caller's
    let extra = (ctx.agent.as_mut()).map_or_else(Vec::new, |a| std::mem::take(&mut a.limits));
    let counted = acquire(state, &subject, Some(&routed.group), tokens, extra).await?;
    ctx.rate_headers = counted.headers;
    ctx.completion.limits = counted.held;
    if let Some(m) = &state.metrics {
        headroom(m, &call.principal, &routed.dep, ctx);
    }
    Ok(())
}

/// `tianji_remaining_requests_metric`: the fewest requests any of the request's limits has
/// left in its window (from the `x-ratelimit-*-remaining-requests` values just counted).
fn headroom(
    m: &crate::metrics::Metrics,
    principal: &crate::auth::Principal,
    dep: &crate::router::Deployment,
    ctx: &RequestCtx,
) {
    let left = ctx
        .rate_headers
        .iter()
        .filter(|(n, _)| n.as_str().ends_with("-remaining-requests"))
        .filter_map(|(_, v)| v.to_str().ok()?.parse::<i64>().ok())
        .min();
    let Some(left) = left else {
        return;
    };
    let key = match principal {
        crate::auth::Principal::Key(k) => Some(&k.key),
        _ => None,
    };
    let labels = crate::metrics::HeadroomLabels {
        model_group: ctx.model.clone(),
        api_provider: dep.provider.name().to_string(),
        api_base: dep.api_base_shown.clone(),
        litellm_model_name: dep.upstream_model.clone(),
        hashed_api_key: key.map(|k| k.token.clone()).unwrap_or_default(),
        api_key_alias: key.and_then(|k| k.key_alias.clone()).unwrap_or_default(),
        model_id: dep.id.clone(),
    };
    m.remaining_requests(&labels, left);
}

/// The rate limits a call holds (released when its record is finished) and their
/// `x-ratelimit-*` headers.
#[derive(Default)]
pub struct Counted {
    pub held: Option<Held>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Count a call of `subject` (and on `extra`, limits of something else the call is for):
/// `tokens` reserved on token limits; for a call to `group`, the priority limiter's limits
/// first.
pub async fn acquire(
    state: &AppState,
    subject: &Subject<'_>,
    group: Option<&Group>,
    tokens: u64,
    extra: Vec<Descriptor>,
) -> Result<Counted, GatewayError> {
    let mut ds = crate::limits::descriptors(subject);
    ds.extend(extra);
    let mut pool = None;
    if let (Some(p), Some(group)) = (&state.priorities, group) {
        // first, so a model at capacity answers with the dynamic limiter's message
        let (mut first, info) = p.descriptors(subject.principal, subject.model, group, 0);
        first.append(&mut ds);
        ds = first;
        pool = info;
    }
    let mut counted = Counted::default();
    if ds.is_empty() {
        return Ok(counted);
    }
    if let Some(mut held) = state.limits.acquire(ds, tokens).await? {
        counted.headers = std::mem::take(&mut held.headers);
        counted.held = Some(held);
    }
    if let Some(pool) = pool
        && let Ok(v) = HeaderValue::from_str(&pool.priority)
    {
        let h = &mut counted.headers;
        h.push((HeaderName::from_static("x-tianji-priority"), v));
        h.push((
            HeaderName::from_static("x-tianji-rate-limiter-version"),
            HeaderValue::from_static("v3"),
        ));
    }
    Ok(counted)
}
