//! The request's OpenTelemetry trace (`callbacks: [otel]`, see
//! [`crate::observability::traces`]): its span started with the request (continuing the
//! client's `traceparent`), one child span per stage (`RequestCtx::enter`), one per upstream
//! attempt (carried upstream as `traceparent`), and the request's attributes set when its record
//! drops (gen_ai.* semantic conventions, LiteLLM's `metadata.*` of the key; never message
//! content, keys or headers). Without traces every function here is a no-op.

use http::{HeaderMap, Response};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Status};

use super::RequestCtx;
use super::post::Completion;
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::observability::traces::{RequestTrace, Stage, Upstream};
use crate::router::Deployment;
use crate::state::AppState;

/// Start the request's trace (with traces on).
pub(super) fn start(state: &AppState, headers: &HeaderMap, ctx: &mut RequestCtx) {
    if let Some(t) = &state.traces {
        ctx.completion.trace = Some(t.request(headers, ctx.completion.route));
    }
}

/// Note who is calling on the request's span (the key's hash and alias, team, user, org).
pub(super) fn caller(principal: &Principal, ctx: &RequestCtx) {
    let (Some(t), Some(k)) = (&ctx.completion.trace, principal.key()) else {
        return;
    };
    let mut attrs = vec![KeyValue::new(
        "metadata.user_api_key_hash",
        k.key.token.clone(),
    )];
    let mut opt = |name: &'static str, v: Option<&String>| {
        if let Some(v) = v {
            attrs.push(KeyValue::new(name, v.clone()));
        }
    };
    opt("metadata.user_api_key_alias", k.key.key_alias.as_ref());
    opt("metadata.user_api_key_team_id", k.key.team_id.as_ref());
    opt("metadata.user_api_key_user_id", k.key.user_id.as_ref());
    let org = (k.org.as_ref()).map(|o| &o.organization_id);
    opt("metadata.user_api_key_org_id", org);
    t.set(attrs);
}

/// The span of the next upstream attempt on `dep`, and the trace headers it sends.
pub(super) fn attempt(dep: &Deployment, ctx: &RequestCtx) -> (Option<Stage>, Option<Upstream>) {
    let Some(t) = &ctx.completion.trace else {
        return (None, None);
    };
    let n = ctx.attempted_retries + ctx.attempted_fallbacks + 1;
    let (span, up) = t.attempt(n, &dep.id, dep.provider.name());
    (Some(span), Some(up))
}

/// End an attempt's span with its outcome.
pub(super) fn attempted(span: Option<Stage>, result: &Result<Response<Body>, GatewayError>) {
    let Some(mut span) = span else {
        return;
    };
    let status = match result {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.status().as_u16(),
    };
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status),
    ));
    if let Err(e) = result {
        span.set_status(Status::error(e.reason()));
    }
}

/// End the request's span with what its record says (from the record's `Drop`).
pub fn finish(t: RequestTrace, c: &Completion) {
    let mut attrs = vec![
        KeyValue::new("tianji.call_id", c.call_id.to_string()),
        KeyValue::new("http.response.status_code", i64::from(c.status)),
        KeyValue::new("gen_ai.request.stream", c.stream),
        KeyValue::new("tianji.cache_hit", c.cache_hit),
        KeyValue::new("gen_ai.cost.total_cost", c.cost()),
    ];
    if let Some(m) = &c.model {
        attrs.push(KeyValue::new("gen_ai.request.model", m.clone()));
    }
    if let Some(d) = &c.deployment {
        attrs.push(KeyValue::new(
            "gen_ai.system",
            d.provider.name().to_string(),
        ));
        attrs.push(KeyValue::new(
            "gen_ai.response.model",
            d.upstream_model.clone(),
        ));
        attrs.push(KeyValue::new("tianji.model_id", d.id.clone()));
    }
    if let Some(u) = &c.usage {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        attrs.push(KeyValue::new(
            "gen_ai.usage.input_tokens",
            n(u.prompt_tokens),
        ));
        attrs.push(KeyValue::new(
            "gen_ai.usage.output_tokens",
            n(u.completion_tokens),
        ));
        attrs.push(KeyValue::new(
            "gen_ai.usage.total_tokens",
            n(u.total_tokens),
        ));
    }
    t.set(attrs);
    let failed = !(200..400).contains(&c.status) || c.stream_error.is_some();
    t.end(failed.then(|| match c.stream_error {
        Some(_) => "stream failed".to_string(),
        None => format!("HTTP {}", c.status),
    }));
}
