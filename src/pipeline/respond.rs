//! Stage `respond`: the answer (or the error) as the client reads it: a whole answer in the
//! client's own format (Anthropic, Gemini) when it is not OpenAI's, and the `x-tianji-*`
//! headers every LLM response carries (success or error).

use http::{HeaderName, HeaderValue, Response};

use super::RequestCtx;
use crate::body::Body;
use crate::error::GatewayError;

/// `NAME "header-name"`, ...: one `static NAME: HeaderName` each.
macro_rules! header_names {
    ($($name:ident $value:literal),* $(,)?) => {
        $(static $name: HeaderName = HeaderName::from_static($value);)*
    };
}

header_names! {
    CALL_ID "x-tianji-call-id", MODEL_ID "x-tianji-model-id", API_BASE "x-tianji-model-api-base",
    REGION "x-tianji-model-region", DURATION "x-tianji-response-duration-ms",
    OVERHEAD "x-tianji-overhead-duration-ms", COST "x-tianji-response-cost",
    RETRIES "x-tianji-attempted-retries", FALLBACKS "x-tianji-attempted-fallbacks",
    MAX_RETRIES "x-tianji-max-retries", TIMEOUT "x-tianji-timeout", CACHE_HIT "x-tianji-cache-hit",
    CACHE_KEY "x-tianji-cache-key",
}

/// The response for the stages' `result`; the record notes its status (and error).
pub async fn respond(
    result: Result<Response<Body>, GatewayError>,
    ctx: &mut RequestCtx,
) -> Response<Body> {
    let result = match (ctx.outward, result) {
        (Some(out), Ok(resp)) => {
            let model = ctx.completion.model.clone().unwrap_or_default();
            // boxed: OpenAI-format answers do not carry (or copy) the translation's state
            Ok(Box::pin(out.answer(resp, &model)).await)
        }
        (_, r) => r,
    };
    let mut resp = result.unwrap_or_else(|e| {
        ctx.completion.error = Some(e.to_string());
        e.into_response_for(ctx.admin)
    });
    ctx.completion.status = resp.status().as_u16();
    if !ctx.upstream_elapsed.is_zero() {
        ctx.completion.upstream = Some(ctx.upstream_elapsed);
    }
    decorate(&mut resp, ctx);
    resp
}

/// Milliseconds with three decimals (whole microseconds; no float formatting on the request
/// path).
fn millis(d: std::time::Duration) -> HeaderValue {
    let us = d.as_micros();
    let mut int = itoa::Buffer::new();
    let int = int.format(us / 1000).as_bytes();
    let mut s = [0u8; 48];
    s[..int.len()].copy_from_slice(int);
    let frac = (us % 1000) as u32;
    s[int.len()] = b'.';
    for (i, div) in [100, 10, 1].into_iter().enumerate() {
        s[int.len() + 1 + i] = b'0' + ((frac / div) % 10) as u8;
    }
    HeaderValue::from_bytes(&s[..int.len() + 4]).unwrap_or(HeaderValue::from_static("0"))
}

/// Small counts as header values without formatting (retries, fallbacks).
fn count(n: u32) -> HeaderValue {
    // (a `static`: a `const` array would be built, and its values dropped, on every call)
    static SMALL: [HeaderValue; 4] = [
        HeaderValue::from_static("0"),
        HeaderValue::from_static("1"),
        HeaderValue::from_static("2"),
        HeaderValue::from_static("3"),
    ];
    match SMALL.get(n as usize) {
        Some(v) => v.clone(),
        None => HeaderValue::from(n),
    }
}

/// Add the `x-tianji-*` headers (the rate-limit ones are moved out of `ctx`).
pub fn decorate(resp: &mut Response<Body>, ctx: &mut RequestCtx) {
    let total = ctx.started.elapsed();
    let rate_headers = std::mem::take(&mut ctx.rate_headers);
    let h = resp.headers_mut();
    h.reserve(12 + rate_headers.len());
    let mut id = uuid::Uuid::encode_buffer();
    let id = ctx.call_id.hyphenated().encode_lower(&mut id);
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert(CALL_ID.clone(), v);
    }
    if let Some(dep) = &ctx.deployment {
        if let Some(v) = &dep.id_header {
            h.insert(MODEL_ID.clone(), v.clone());
        }
        if !dep.api_base.is_empty() {
            h.insert(API_BASE.clone(), dep.api_base_header.clone());
        }
        if let Some(v) = (dep.region.as_deref()).and_then(|r| HeaderValue::from_str(r).ok()) {
            h.insert(REGION.clone(), v);
        }
        h.insert(RETRIES.clone(), count(ctx.attempted_retries));
        h.insert(FALLBACKS.clone(), count(ctx.attempted_fallbacks));
        h.insert(MAX_RETRIES.clone(), count(ctx.max_retries));
        let timeout = match ctx.timeout {
            Some(t) if t != dep.timeout => crate::router::timeout_header(t),
            _ => dep.timeout_header.clone(),
        };
        if let Some(v) = timeout {
            h.insert(TIMEOUT.clone(), v);
        }
    }
    if let Some(c) = &ctx.cache
        && let Ok(v) = HeaderValue::from_str(&c.key)
    {
        h.insert(CACHE_KEY.clone(), v);
        h.insert(
            CACHE_HIT.clone(),
            HeaderValue::from_static(if c.hit { "True" } else { "False" }),
        );
    }
    h.insert(DURATION.clone(), millis(total));
    for (k, v) in rate_headers {
        h.insert(k, v);
    }
    // A stream's cost is known only at its end, after the headers went out.
    if !ctx.completion.stream
        && let Ok(v) = HeaderValue::from_str(&ctx.completion.cost().to_string())
    {
        h.insert(COST.clone(), v);
    }
    h.insert(
        OVERHEAD.clone(),
        millis(total.saturating_sub(ctx.upstream_elapsed)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_have_three_decimals() {
        use std::time::Duration;
        assert_eq!(millis(Duration::from_micros(1_234_567)), "1234.567");
        assert_eq!(millis(Duration::from_micros(5)), "0.005");
        assert_eq!(millis(Duration::from_nanos(999)), "0.000");
        assert_eq!(millis(Duration::from_millis(20)), "20.000");
        let secs = |d| crate::router::timeout_header(d).unwrap();
        assert_eq!(secs(Duration::from_secs(600)), "600.0");
        assert_eq!(secs(Duration::from_secs_f64(0.001)), "0.001");
        assert_eq!(secs(Duration::from_millis(1500)), "1.5");
        assert_eq!(count(2), "2");
        assert_eq!(count(17), "17");
    }
}
