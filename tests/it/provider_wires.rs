//! Gemini, Vertex AI, Bedrock, Cohere and Mistral deployments through the gateway against mock
//! upstreams: the exact upstream request (URL, query, headers, body equal to the golden of the
//! pure translation), answers and streams translated back, embeddings, provider errors mapped.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fixtures::{self, pretty};
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::providers::{self, AWS_KEY_ID, AWS_SECRET, VERTEX_TOKEN};
use crate::common::{TestGateway, stream};

/// SSE fixture file as mock events (one per blank-line separated event).
fn sse_fixture(dir: &str, name: &str) -> Reply {
    let text = fixtures::text(dir, name);
    Reply::Sse {
        events: text
            .split_inclusive("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(str::to_string)
            .collect(),
        gap: Duration::ZERO,
    }
}

/// Replace what follows each `prefix` (up to the first character that is not alphanumeric)
/// with `with`.
fn replace_after(text: &str, prefix: &str, with: &str, keep: fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at + prefix.len()]);
        out.push_str(with);
        let tail = &rest[at + prefix.len()..];
        rest = &tail[tail.find(|c: char| !keep(c)).unwrap_or(tail.len())..];
    }
    out.push_str(rest);
    out
}

/// The gateway's per-call id (`chatcmpl-{suffix}`, tool calls `call_{suffix}_N`) and `created`
/// replaced by the goldens' values.
fn normalize(text: &str, suffix: &str, created: u64) -> String {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let t = replace_after(text, "chatcmpl-", suffix, alnum);
    let t = replace_after(&t, "\"call_", suffix, alnum);
    replace_after(&t, "\"created\":", &created.to_string(), |c| {
        c.is_ascii_digit()
    })
}

fn header<'a>(r: &'a Recorded, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Usage read from the provider's answer priced the call (it feeds spend and TPM limits).
fn assert_cost(r: &crate::common::Resp) {
    let cost: f64 = r
        .header("x-tianji-response-cost")
        .expect("cost header")
        .parse()
        .unwrap();
    assert!(cost > 0.0, "cost {cost}");
}

fn with_model(mut v: Value, model: &str) -> Value {
    v["model"] = json!(model);
    v
}

#[tokio::test]
async fn gemini_ai_studio_exact_request_stream_answer_embeddings() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        match r.path.rsplit_once(':').map(|(_, m)| m) {
            Some("generateContent") => {
                Reply::status(200, fixtures::json("gemini", "gemini_response.json"))
            }
            Some("streamGenerateContent") => sse_fixture("gemini", "stream.sse"),
            Some("batchEmbedContents") => {
                Reply::status(200, fixtures::json("gemini", "gemini_embed_response.json"))
            }
            _ => providers::reply(r),
        }
    }))
    .await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: gemini\n    tianji_params: {{model: gemini/gemini-2.5-flash, api_base: \"http://{0}\", api_key: gem-secret}}\n  - model_name: gemini-embed\n    tianji_params: {{model: gemini/gemini-embedding-001, api_base: \"http://{0}\", api_key: gem-secret}}\n",
        up.addr
    ))
    .await;

    // streamed: the request golden, the stream translated chunk by chunk
    let req = fixtures::json("gemini", "chat_request.json");
    let s = stream(&gw.url("/v1/chat/completions"), &req.to_string()).await;
    assert_eq!(s.status, 200, "{}", s.text());
    let sent = up.last();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(sent.query, "alt=sse");
    assert_eq!(header(&sent, "x-goog-api-key"), Some("gem-secret"));
    assert!(header(&sent, "authorization").is_none());
    assert_eq!(header(&sent, "content-type"), Some("application/json"));
    assert_eq!(
        pretty(&sent.json()),
        fixtures::text("gemini", "gemini_request.json")
    );
    fixtures::golden(
        "gemini",
        "stream_chunks.sse",
        &normalize(&s.text(), "gemini01", 1_700_000_000),
    );

    // whole answer
    let mut req = req;
    req["stream"] = json!(false);
    req.as_object_mut().unwrap().remove("stream_options");
    let r = gw.post("/v1/chat/completions", &req.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.query, "");
    assert_eq!(
        pretty(&sent.json()),
        fixtures::text("gemini", "gemini_request.json")
    );
    assert_cost(&r);
    let got: Value =
        serde_json::from_str(&normalize(&r.text(), "gemini01", 1_700_000_000)).unwrap();
    assert_eq!(pretty(&got), fixtures::text("gemini", "chat_response.json"));

    // embeddings
    let req = with_model(
        fixtures::json("gemini", "embed_request.json"),
        "gemini-embed",
    );
    let r = gw.post("/v1/embeddings", &req.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(
        pretty(&sent.json()),
        fixtures::text("gemini", "gemini_embed_request.json")
    );
    let got = r.json();
    let want = fixtures::json("gemini", "embed_response.json");
    assert_eq!(got["data"], want["data"], "{got}");
    assert_eq!(got["object"], "list");
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn vertex_service_account_token_is_fetched_once_and_sent() {
    let up = MockUpstream::with(Arc::new(providers::reply)).await;
    let mut sa = fixtures::json("gemini", "service_account.json");
    sa["token_uri"] = json!(format!("http://{}/token", up.addr));
    let creds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(creds.path(), sa.to_string()).unwrap();
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: vgem\n    tianji_params: {{model: vertex_ai/gemini-2.5-pro, api_base: \"http://{0}\", vertex_project: proj-1, vertex_location: europe-west4, vertex_credentials: \"{1}\"}}\n  - model_name: vemb\n    tianji_params: {{model: vertex_ai/text-embedding-005, api_base: \"http://{0}\", vertex_project: proj-1, vertex_location: europe-west4, vertex_credentials: \"{1}\"}}\n",
        up.addr,
        creds.path().display()
    ))
    .await;
    let ask = json!({"model": "vgem", "messages": [{"role": "user", "content": "What is the weather in Paris?"}]});
    for _ in 0..3 {
        let r = gw.post("/v1/chat/completions", &ask.to_string()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let m = &r.json()["choices"][0]["message"];
        assert_eq!(m["content"], "Hello there");
        assert_eq!(m["tool_calls"][0]["function"]["name"], "get_weather");
    }
    let reqs = up.requests();
    let tokens: Vec<_> = reqs.iter().filter(|r| r.path == "/token").collect();
    assert_eq!(tokens.len(), 1, "the token is cached");
    assert_eq!(
        header(tokens[0], "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let calls: Vec<_> = reqs.iter().filter(|r| r.path != "/token").collect();
    assert_eq!(calls.len(), 3);
    for c in &calls {
        assert_eq!(
            c.path,
            "/v1/projects/proj-1/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(
            header(c, "authorization"),
            Some(format!("Bearer {VERTEX_TOKEN}").as_str())
        );
        assert!(header(c, "x-goog-api-key").is_none());
    }

    // streamed
    let s = stream(
        &gw.url("/v1/chat/completions"),
        &json!({"model": "vgem", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
    )
    .await;
    assert_eq!(s.status, 200);
    assert!(s.text().contains("\"content\":\"Hello\""), "{}", s.text());
    assert!(s.text().ends_with("data: [DONE]\n\n"));
    let sent = up.last();
    assert!(sent.path.ends_with("gemini-2.5-pro:streamGenerateContent"));
    assert_eq!(sent.query, "alt=sse");

    // embeddings through predict
    let r = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "vemb", "input": ["a", "b"]}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    let sent = up.last();
    assert_eq!(
        sent.path,
        "/v1/projects/proj-1/locations/europe-west4/publishers/google/models/text-embedding-005:predict"
    );
    assert_eq!(sent.json()["instances"][1]["content"], "b");
    // each deployment keeps its own token
    assert_eq!(
        up.requests().iter().filter(|r| r.path == "/token").count(),
        2
    );
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn bedrock_signed_converse_stream_and_embeddings() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        if r.path.ends_with("/converse") && providers::sigv4_check(r).is_ok() {
            return Reply::status(200, fixtures::json("bedrock", "converse_response.json"));
        }
        providers::reply(r)
    }))
    .await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: claude\n    tianji_params: {{model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0, api_base: \"http://{0}\", aws_access_key_id: {AWS_KEY_ID}, aws_secret_access_key: \"{AWS_SECRET}\", aws_region_name: us-west-2}}\n  - model_name: titan\n    tianji_params: {{model: bedrock/amazon.titan-embed-text-v2:0, api_base: \"http://{0}\", aws_access_key_id: {AWS_KEY_ID}, aws_secret_access_key: \"{AWS_SECRET}\", aws_region_name: us-west-2}}\n  - model_name: wrong-secret\n    tianji_params: {{model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0, api_base: \"http://{0}\", aws_access_key_id: {AWS_KEY_ID}, aws_secret_access_key: not-the-secret, aws_region_name: us-west-2}}\n",
        up.addr
    ))
    .await;

    // whole answer: the Converse golden, signed as AWS computes it
    let mut req = fixtures::json("bedrock", "chat_request.json");
    req["stream"] = json!(false);
    let r = gw.post("/v1/chat/completions", &req.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(
        sent.path,
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    providers::sigv4_check(&sent).unwrap();
    assert!(
        header(&sent, "authorization")
            .unwrap()
            .contains("/us-west-2/bedrock/aws4_request, SignedHeaders=")
    );
    assert_eq!(
        pretty(&sent.json()),
        fixtures::text("bedrock", "converse_request.json")
    );
    assert_cost(&r);
    let got = r.json();
    let want = fixtures::json("bedrock", "chat_response.json");
    assert_eq!(got["choices"], want["choices"], "{got}");
    assert_eq!(got["usage"], want["usage"], "{got}");

    // streamed over the AWS event stream
    let body = json!({"model": "claude", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}]});
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(s.status, 200, "{}", s.text());
    let sent = up.last();
    assert!(sent.path.ends_with("/converse-stream"), "{}", sent.path);
    providers::sigv4_check(&sent).unwrap();
    let text = s.text();
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello there");
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, r#"{"city":"Paris"}"#);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 23);
    assert!(text.ends_with("data: [DONE]\n\n"));

    // Titan embeddings: one signed invoke per input
    let r = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "titan", "input": ["a", "b"]}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    let invokes: Vec<_> = up
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/invoke"))
        .collect();
    assert_eq!(invokes.len(), 2);
    for i in &invokes {
        assert_eq!(i.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
        providers::sigv4_check(i).unwrap();
    }

    // a wrong secret: the mock refuses the signature, the client sees AWS's 403
    let ask = json!({"model": "wrong-secret", "messages": [{"role": "user", "content": "hi"}]});
    let e = gw
        .post("/v1/chat/completions", &ask.to_string())
        .await
        .assert_error(403);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature we calculated does not match"),
        "{e}"
    );
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn cohere_v2_exact_request_answer_stream_embed() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| match r.path.as_str() {
        "/v2/chat" if r.json()["stream"] == true => sse_fixture("cohere", "stream_tools.sse"),
        "/v2/chat" => Reply::status(200, fixtures::json("cohere", "chat_v2_response.json")),
        "/v2/embed" => Reply::status(200, fixtures::json("cohere", "embed_v2_response.json")),
        _ => providers::reply(r),
    }))
    .await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: claude\n    tianji_params: {{model: cohere/command-a-03-2025, api_base: \"http://{0}\", api_key: co-secret}}\n  - model_name: cohere-embed\n    tianji_params: {{model: cohere/embed-v4.0, api_base: \"http://{0}/v2\", api_key: co-secret}}\n",
        up.addr
    ))
    .await;
    let req = fixtures::json("cohere", "chat_request.json");
    let s = stream(&gw.url("/v1/chat/completions"), &req.to_string()).await;
    assert_eq!(s.status, 200, "{}", s.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v2/chat");
    assert_eq!(header(&sent, "authorization"), Some("Bearer co-secret"));
    assert_eq!(
        pretty(&sent.json()),
        fixtures::text("cohere", "chat_v2_request.json")
    );
    fixtures::golden(
        "cohere",
        "stream_tools_chunks.sse",
        &normalize(&s.text(), "cohere01", 1_700_000_000),
    );

    let mut whole = req.clone();
    whole["stream"] = json!(false);
    whole.as_object_mut().unwrap().remove("stream_options");
    let r = gw.post("/v1/chat/completions", &whole.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut want = fixtures::json("cohere", "chat_v2_request.json");
    want["stream"] = json!(false);
    assert_eq!(up.last().json(), want);
    assert_cost(&r);
    let got = r.json();
    let golden = fixtures::json("cohere", "chat_response.json");
    assert_eq!(got["choices"], golden["choices"], "{got}");
    assert_eq!(got["usage"], golden["usage"], "{got}");

    let req = with_model(
        fixtures::json("cohere", "embed_request.json"),
        "cohere-embed",
    );
    let r = gw.post("/v1/embeddings", &req.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v2/embed");
    assert_eq!(
        pretty(&sent.json()),
        fixtures::text("cohere", "embed_v2_request.json")
    );
    let want = fixtures::json("cohere", "embed_response.json");
    assert_eq!(r.json()["data"], want["data"]);
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn mistral_gets_only_the_fields_it_accepts() {
    let up = MockUpstream::with(Arc::new(providers::reply)).await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: mistral-large-latest\n    tianji_params: {{model: mistral/mistral-large-latest, api_base: \"http://{0}/v1\", api_key: mi-secret}}\n  - model_name: mistral-embed\n    tianji_params: {{model: mistral/mistral-embed, api_base: \"http://{0}/v1\", api_key: mi-secret}}\n",
        up.addr
    ))
    .await;
    let req = fixtures::json("mistral", "chat_request.json");
    let s = stream(&gw.url("/v1/chat/completions"), &req.to_string()).await;
    assert_eq!(s.status, 200, "{}", s.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(header(&sent, "authorization"), Some("Bearer mi-secret"));
    assert_eq!(
        pretty(&sent.json()),
        fixtures::text("mistral", "chat_request_fixed.json")
    );
    assert!(s.text().contains("Hello"), "{}", s.text());

    let req = fixtures::json("mistral", "embedding_request.json");
    let r = gw.post("/v1/embeddings", &req.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(
        pretty(&sent.json()),
        fixtures::text("mistral", "embedding_request_fixed.json")
    );
    gw.gw.shutdown().await;
}

/// Each provider's own error shape arrives as OpenAI's error with the right status and code,
/// the provider's message kept.
#[tokio::test]
async fn provider_errors_mapped_per_provider() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        let json_reply = |status: u16, body: Value, headers: Vec<(&'static str, String)>| Reply::Json {
            status,
            body: body.to_string(),
            headers,
        };
        if r.path.contains(":generateContent") {
            return json_reply(400, json!({"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}), vec![]);
        }
        if r.path.ends_with("/converse") {
            return json_reply(
                400,
                json!({"message": "Input is too long for requested model."}),
                vec![("x-amzn-errortype", "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/".into())],
            );
        }
        if r.path == "/v2/chat" {
            return json_reply(429, json!({"message": "You are using a Trial key, which is limited to 10 API calls / minute."}), vec![]);
        }
        if r.path.ends_with("/v1/messages") {
            return json_reply(401, json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}), vec![]);
        }
        json_reply(400, json!({"error": {"message": "Your prompt was flagged by the safety system", "type": "invalid_request_error", "code": "content_policy_violation"}}), vec![])
    }))
    .await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: gem\n    tianji_params: {{model: gemini/gemini-2.5-flash, api_base: \"http://{0}\", api_key: k}}\n  - model_name: bed\n    tianji_params: {{model: bedrock/amazon.nova-pro-v1:0, api_base: \"http://{0}\", aws_access_key_id: {AWS_KEY_ID}, aws_secret_access_key: \"{AWS_SECRET}\"}}\n  - model_name: co\n    tianji_params: {{model: cohere/command-r, api_base: \"http://{0}\", api_key: k}}\n  - model_name: ant\n    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{0}\", api_key: k}}\n  - model_name: mis\n    tianji_params: {{model: mistral/mistral-small, api_base: \"http://{0}/v1\", api_key: k}}\n",
        up.addr
    ))
    .await;
    // `code`: the provider's own OpenAI code (Mistral's here), else the status as a string
    let cases = [
        (
            "gem",
            400,
            Some("400"),
            "exceeds the maximum number of tokens",
        ),
        ("bed", 400, Some("400"), "Input is too long"),
        ("co", 429, Some("429"), "Trial key"),
        ("ant", 401, Some("401"), "invalid x-api-key"),
        (
            "mis",
            400,
            Some("content_policy_violation"),
            "flagged by the safety system",
        ),
    ];
    for (model, status, code, text) in cases {
        let ask = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let e = gw
            .post("/v1/chat/completions", &ask.to_string())
            .await
            .assert_error(status);
        assert!(
            e["error"]["message"].as_str().unwrap().contains(text),
            "{model}: {e}"
        );
        if let Some(code) = code {
            assert_eq!(e["error"]["code"], code, "{model}: {e}");
        }
    }
    gw.gw.shutdown().await;
}

/// `POST /v1beta/models/{model}:generateContent` and friends: to a Gemini deployment the body
/// goes as received with the deployment's key (never the caller's); to an OpenAI deployment it
/// is translated through chat and back.
#[tokio::test]
async fn gemini_native_route_native_and_translated() {
    use crate::common::{MASTER_KEY, send};
    use bytes::Bytes;
    use http::Method;

    let up = MockUpstream::with(Arc::new(providers::reply)).await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: gemini\n    tianji_params: {{model: gemini/gemini-2.5-flash, api_base: \"http://{0}\", api_key: gem-secret}}\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"http://{0}/v1\", api_key: sk-up}}\n",
        up.addr
    ))
    .await;
    let native = fixtures::text("gemini", "gemini_in_request.json");
    let post = |path: String, key_header: bool| {
        let body = Bytes::from(native.clone());
        async move {
            let headers: Vec<(&str, &str)> = if key_header {
                vec![("x-goog-api-key", MASTER_KEY)]
            } else {
                vec![]
            };
            send(Method::POST, &path, &headers, body).await
        }
    };

    // native, the key in the query string: forwarded as received, the query key not passed on
    let r = post(
        gw.url(&format!(
            "/v1beta/models/gemini:generateContent?key={MASTER_KEY}"
        )),
        false,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.query, "");
    assert_eq!(header(&sent, "x-goog-api-key"), Some("gem-secret"));
    assert_eq!(sent.body, Bytes::from(native.clone()));
    let got = r.json();
    assert_eq!(
        got["candidates"][0]["content"]["parts"][1]["functionCall"]["args"]["city"],
        "Paris"
    );
    assert!(r.header("x-tianji-response-cost").is_some());

    // Gemini's v1 path, beside OpenAI's model lookup
    let r = post(gw.url("/v1/models/gemini:generateContent"), true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        up.last().path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(gw.get("/v1/models/gemini").await.status, 200);

    // native stream and countTokens
    let r = post(
        gw.url("/v1beta/models/gemini:streamGenerateContent?alt=sse"),
        true,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().query, "alt=sse");
    assert!(r.text().contains("\"functionCall\""), "{}", r.text());
    let r = post(gw.url("/v1beta/models/gemini:countTokens"), true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["totalTokens"], 14);
    assert!(up.last().path.ends_with(":countTokens"));

    // translated for an OpenAI deployment: the chat golden goes upstream
    let r = post(gw.url("/v1beta/models/gpt:generateContent"), true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(header(&sent, "authorization"), Some("Bearer sk-up"));
    let mut want = fixtures::json("gemini", "chat_from_gemini.json");
    want["model"] = json!("gpt-4o");
    let want_obj = want.as_object_mut().unwrap();
    want_obj.remove("stream");
    want_obj.remove("stream_options");
    assert_eq!(sent.json(), want);
    let got = r.json();
    let parts = &got["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["text"], "Hello there");
    assert_eq!(parts[1]["functionCall"]["name"], "get_weather");
    assert_eq!(got["usageMetadata"]["totalTokenCount"], 23);

    let r = post(
        gw.url("/v1beta/models/gpt:streamGenerateContent?alt=sse"),
        true,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.starts_with("data: {"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(text.contains("\"functionCall\""), "{text}");
    let r = post(gw.url("/v1beta/models/gpt:countTokens"), true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["totalTokens"].as_u64().unwrap() > 0);

    // no key at all
    let r = post(gw.url("/v1beta/models/gemini:generateContent"), false).await;
    r.assert_error(401);
    gw.gw.shutdown().await;
}
