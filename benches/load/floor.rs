//! `__floor PORT UPSTREAM`: the least any gateway compatible with the API must do per chat
//! completion, on the bare proxy's stack (same runtime, server builder and pooled client), so
//! `--perf` can show in one run how much of the gateway's cost over the bare proxy is the job
//! itself. Per request, each step in its cheapest form:
//!
//! - authenticate: SHA-256 of the bearer key (keys are stored hashed), compared with the hash
//!   of the one key it knows (401 otherwise);
//! - read the whole body and parse it as JSON (what is not needed is skipped, but the whole
//!   document is still checked), taking `model` and `stream`;
//! - route: the public model name to its deployment (a map lookup), and the body's `model`
//!   replaced by the deployment's model name (one copy of the body, no re-serialization);
//! - send it upstream with the provider's key;
//! - non-streamed answers: read the whole answer and its `usage`; streams: look for `usage` in
//!   each chunk as it passes and parse it where it is;
//! - price the tokens, add the cost as a header, count the request, tokens and cost.
//!
//! Nothing else: no logging, metrics, limits, retries, timeouts, spend rows, error mapping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Digest;

type Out = BoxBody<Bytes, hyper::Error>;

struct Deployment {
    model: &'static str,
    /// `http://127.0.0.1:PORT/v1/chat/completions` (or the slow mock's path)
    uri: http::Uri,
    input_cost: f64,
    output_cost: f64,
}

struct Floor {
    client: Client<HttpConnector, Full<Bytes>>,
    key_hash: [u8; 32],
    models: HashMap<&'static str, Deployment>,
    upstream_auth: http::HeaderValue,
    requests: AtomicU64,
    tokens: AtomicU64,
    /// micro-dollars
    spend: AtomicU64,
}

#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    model: &'a str,
    #[serde(default)]
    stream: bool,
}

#[derive(serde::Deserialize, Default, Clone, Copy)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(serde::Deserialize)]
struct Answer {
    usage: Option<Usage>,
}

fn reply(status: u16, body: &'static str) -> Response<Out> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|n| match n {})
            .boxed(),
    );
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
    r
}

impl Floor {
    fn book(&self, d: &Deployment, u: Usage) -> f64 {
        let cost =
            u.prompt_tokens as f64 * d.input_cost + u.completion_tokens as f64 * d.output_cost;
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.tokens
            .fetch_add(u.prompt_tokens + u.completion_tokens, Ordering::Relaxed);
        self.spend.fetch_add((cost * 1e6) as u64, Ordering::Relaxed);
        cost
    }

    async fn serve(&'static self, req: Request<Incoming>) -> Response<Out> {
        let key = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        let Some(key) = key else {
            return reply(401, r#"{"error":{"message":"no key"}}"#);
        };
        let hash: [u8; 32] = sha2::Sha256::digest(key).into();
        if hash != self.key_hash {
            return reply(401, r#"{"error":{"message":"bad key"}}"#);
        }
        let Ok(body) = req.into_body().collect().await else {
            return reply(400, r#"{"error":{"message":"body"}}"#);
        };
        let body = body.to_bytes();
        let Ok(head) = serde_json::from_slice::<Head>(&body) else {
            return reply(400, r#"{"error":{"message":"not JSON"}}"#);
        };
        let Some(d) = self.models.get(head.model) else {
            return reply(400, r#"{"error":{"message":"unknown model"}}"#);
        };
        // the body with the deployment's model name in place of the public one
        let at = head.model.as_ptr() as usize - body.as_ptr() as usize;
        let end = at + head.model.len();
        let mut out = Vec::with_capacity(body.len() + d.model.len());
        out.extend_from_slice(&body[..at]);
        out.extend_from_slice(d.model.as_bytes());
        out.extend_from_slice(&body[end..]);
        let up = Request::post(d.uri.clone())
            .header(http::header::AUTHORIZATION, self.upstream_auth.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(out)))
            .unwrap();
        let Ok(resp) = self.client.request(up).await else {
            return reply(502, r#"{"error":{"message":"upstream"}}"#);
        };
        let (mut parts, incoming) = resp.into_parts();
        if head.stream {
            let relay = incoming.map_frame(move |f: Frame<Bytes>| {
                if let Some(data) = f.data_ref()
                    && let Some(at) = memchr::memmem::find(data, b"\"usage\":{")
                {
                    let rest = &data[at + 8..];
                    let end = memchr::memchr(b'}', rest).map_or(rest.len(), |e| e + 1);
                    if let Ok(u) = serde_json::from_slice::<Usage>(&rest[..end]) {
                        self.book(d, u);
                    }
                }
                f
            });
            return Response::from_parts(parts, relay.boxed());
        }
        let Ok(answer) = incoming.collect().await else {
            return reply(502, r#"{"error":{"message":"upstream body"}}"#);
        };
        let answer = answer.to_bytes();
        let usage = serde_json::from_slice::<Answer>(&answer)
            .ok()
            .and_then(|a| a.usage)
            .unwrap_or_default();
        let cost = self.book(d, usage);
        parts.headers.insert(
            "x-tianji-response-cost",
            http::HeaderValue::from_str(&cost.to_string()).unwrap(),
        );
        parts.headers.remove(http::header::TRANSFER_ENCODING);
        Response::from_parts(parts, Full::new(answer).map_err(|n| match n {}).boxed())
    }
}

pub fn role_floor(port: u16, upstream: u16) {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .pool_max_idle_per_host(4096)
        .build(http);
    let deployment = |path: &str, priced: bool| Deployment {
        model: "gpt-bench",
        uri: format!("http://127.0.0.1:{upstream}{path}/chat/completions")
            .parse()
            .unwrap(),
        input_cost: if priced { 0.000_002_5 } else { 0.0 },
        output_cost: if priced { 0.000_01 } else { 0.0 },
    };
    let floor: &'static Floor = Box::leak(Box::new(Floor {
        client,
        key_hash: sha2::Sha256::digest(super::MASTER.as_bytes()).into(),
        models: HashMap::from([
            ("bench", deployment("/v1", true)),
            ("bench-slow", deployment("/slow/v1", false)),
        ]),
        upstream_auth: http::HeaderValue::from_static("Bearer sk-upstream"),
        requests: AtomicU64::new(0),
        tokens: AtomicU64::new(0),
        spend: AtomicU64::new(0),
    }));
    super::serve_proxy(port, move |req| floor.serve(req));
}
