//! Stage `guard` (`crate::guardrails`): after `authorize`, the guardrails that apply to the
//! request are chosen; `pre_call` ones check (or rewrite) its text before it is routed: a
//! block answers a 4xx naming the guardrail and nothing goes upstream; a rewrite replaces the
//! body (the only case the body is re-serialized). A request's own `guardrails` member is cut
//! out of the bytes before anything goes upstream. `during_call` ones run beside the attempts ([`during`]), the answer
//! held until they pass; `post_call` ones check a whole answer, or a stream's assembled text
//! before its end is released ([`answer`]); `logging_only` ones mask what is logged
//! ([`mask_logged_request`], [`answer`]). A request no guardrail applies to costs one
//! `memmem` over the body and allocates nothing.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, header};
use serde_json::Value;

use super::RequestCtx;
use super::read::Call;
use crate::body::Body;
use crate::error::GatewayError;
use crate::guardrails::stream::Guarded;
use crate::guardrails::{Mode, Run, Side, texts};
use crate::state::AppState;

/// The request's guardrails, between stages.
pub struct Guard {
    pub run: Arc<Run>,
    /// The request's texts for `during_call` guardrails.
    during: Option<Vec<String>>,
}

/// Choose the request's guardrails and run the `pre_call` ones.
pub async fn pre_call(
    state: &AppState,
    call: &mut Call,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let raw = &call.parsed.raw;
    let named = crate::holds!(raw, b"\"guardrails\"");
    if call.upload.is_some() || (state.guardrails.load().is_empty() && !named) {
        return Ok(());
    }
    // boxed: a request without guardrails does not carry (or copy) the checks' state
    Box::pin(run_pre_call(state, call, ctx, named)).await
}

/// [`pre_call`] for a request that names guardrails or that some apply to.
async fn run_pre_call(
    state: &AppState,
    call: &mut Call,
    ctx: &mut RequestCtx,
    named: bool,
) -> Result<(), GatewayError> {
    let guardrails = state.guardrails.load_full();
    let selected = guardrails.select(&call.parsed.raw, &call.principal)?;
    // the request's own `guardrails` member is the gateway's: cut out, nothing else moves
    if let Some(cut) = named
        .then(|| without_guardrails(&call.parsed.raw))
        .flatten()
    {
        reparse(state, call, cut)?;
    }
    if selected == 0 {
        return Ok(());
    }
    let set = (guardrails, selected);
    let run = Run::new(set, state.client.clone(), call.models.clone()).about(
        ctx.call_id.to_string(),
        ctx.model.clone(),
        ctx.end_user.clone(),
        Some(call.principal.clone()),
    );
    let run = Arc::new(run);
    let Ok(mut body) = serde_json::from_slice::<Value>(&call.parsed.raw) else {
        ctx.guard = Some(Guard { run, during: None });
        return Ok(());
    };
    let mut texts = texts::collect(&mut body, Side::Request);
    let mut edited = false;
    if run.any(Mode::PreCall)
        && let Some(new) = run.apply(Mode::PreCall, Side::Request, &texts).await?
    {
        texts::replace(&mut body, Side::Request, &new);
        texts = new;
        edited = true;
    }
    if edited {
        let raw = Bytes::from(serde_json::to_vec(&body).map_err(|e| {
            GatewayError::Internal(format!("re-serializing a guarded request: {e}"))
        })?);
        reparse(state, call, raw)?;
    }
    let during = run.any(Mode::DuringCall).then_some(texts);
    ctx.guard = Some(Guard { run, during });
    Ok(())
}

/// Parse the request's new body `raw` (the model named as before when it came from the path).
fn reparse(state: &AppState, call: &mut Call, raw: Bytes) -> Result<(), GatewayError> {
    let keep = call.parsed.model.take();
    call.parsed = super::parse::parse_with(raw, call.expect, state.cache.is_some())?;
    if call.parsed.model.is_none() {
        call.parsed.model = keep;
    }
    Ok(())
}

/// `raw` without its top-level `guardrails` member (the other bytes as they were), if it has
/// one.
fn without_guardrails(raw: &Bytes) -> Option<Bytes> {
    let top = super::members::scan(raw)?;
    let i = (top.members.iter()).position(|m| raw.get(m.key.clone()) == Some(b"guardrails"))?;
    let m = &top.members[i];
    let start = m.key.start - 1;
    let cut = match (top.members.get(i + 1), i.checked_sub(1)) {
        (Some(next), _) => start..next.key.start - 1,
        (None, Some(prev)) => top.members[prev].value.end..m.value.end,
        (None, None) => start..m.value.end,
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..cut.start]);
    out.extend_from_slice(&raw[cut.end..]);
    Some(Bytes::from(out))
}

/// The `during_call` check to run beside the attempts, if any.
///
/// Boxed: the caller holds this option across the attempts, so an unboxed check (about
/// 1.5 KB) would sit in every request's state, with guardrails or not.
pub fn during(
    ctx: &mut RequestCtx,
) -> Option<std::pin::Pin<Box<impl Future<Output = Result<(), GatewayError>> + use<>>>> {
    let g = ctx.guard.as_mut()?;
    let texts = g.during.take()?;
    let run = g.run.clone();
    Some(Box::pin(async move {
        run.apply(Mode::DuringCall, Side::Request, &texts)
            .await
            .map(|_| ())
            .map_err(GatewayError::from)
    }))
}

/// `logging_only`: the request body as logged (SpendLogs `messages`, callback payloads) masked.
pub async fn mask_logged_request(ctx: &mut RequestCtx) {
    let Some(g) = &ctx.guard else {
        return;
    };
    if !g.run.any(Mode::LoggingOnly) {
        return;
    }
    let run = g.run.clone();
    if let Some((req, _)) = ctx.completion.bodies.as_mut() {
        *req = Box::pin(masked(&run, Side::Request, req)).await;
    }
}

/// `body` with the `logging_only` guardrails' masks (as is when they do not rewrite it).
async fn masked(run: &Run, side: Side, body: &Bytes) -> Bytes {
    match run.apply_body(Mode::LoggingOnly, side, body).await {
        Ok(Some(v)) => serde_json::to_vec(&v).map_or_else(|_| body.clone(), Bytes::from),
        Ok(None) => body.clone(),
        // what cannot be masked is not logged
        Err(_) => Bytes::from_static(b"{}"),
    }
}

/// `post_call` on the answer: a whole answer checked (and rewritten) now, a relayed stream's
/// end held until its text passes; `logging_only` masks the logged answer.
pub async fn answer(
    ctx: &mut RequestCtx,
    result: Result<Response<Body>, GatewayError>,
) -> Result<Response<Body>, GatewayError> {
    if ctx.guard.is_none() {
        return result;
    }
    // boxed: an answer without guardrails does not carry (or copy) the checks' state
    Box::pin(guarded_answer(ctx, result)).await
}

/// [`answer`] for a request with guardrails.
async fn guarded_answer(
    ctx: &mut RequestCtx,
    result: Result<Response<Body>, GatewayError>,
) -> Result<Response<Body>, GatewayError> {
    let Some(g) = &ctx.guard else {
        return result;
    };
    let resp = result?;
    if !resp.status().is_success() {
        return Ok(resp);
    }
    let run = g.run.clone();
    if run.any(Mode::LoggingOnly)
        && let Some((_, Some(logged))) = ctx.completion.bodies.as_mut()
    {
        *logged = masked(&run, Side::Response, logged).await;
    }
    if !run.wants_answer() {
        return Ok(resp);
    }
    let (mut head, body) = resp.into_parts();
    let body = match body {
        Body::Relay(inner) => Body::Relay(Box::new(Guarded::new(inner, run))),
        Body::Full(Some(bytes)) => {
            match run
                .apply_body(Mode::PostCall, Side::Response, &bytes)
                .await?
            {
                Some(v) => {
                    head.headers.remove(header::CONTENT_LENGTH);
                    let out = serde_json::to_vec(&v).map_err(|e| {
                        GatewayError::Internal(format!("re-serializing a guarded answer: {e}"))
                    })?;
                    Body::full(out)
                }
                None => Body::Full(Some(bytes)),
            }
        }
        other => other,
    };
    Ok(Response::from_parts(head, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guardrails_member_is_cut_out() {
        let cut = |s: &str| {
            without_guardrails(&Bytes::copy_from_slice(s.as_bytes()))
                .map(|b| String::from_utf8(b.to_vec()).unwrap())
        };
        assert_eq!(
            cut(r#"{"model": "m", "guardrails": ["a"], "x": 1}"#).unwrap(),
            r#"{"model": "m", "x": 1}"#
        );
        assert_eq!(
            cut(r#"{"model":"m","guardrails":{"a":{}}}"#).unwrap(),
            r#"{"model":"m"}"#
        );
        assert_eq!(cut(r#"{"guardrails":[]}"#).unwrap(), r#"{}"#);
        assert!(cut(r#"{"metadata":{"guardrails":["a"]}}"#).is_none());
    }
}
