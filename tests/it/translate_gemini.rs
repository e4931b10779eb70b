//! Gemini / Vertex AI translation against golden fixtures (`tests/fixtures/gemini/`): chat
//! requests out, answers and streams back, the native Gemini routes both ways, embeddings, and
//! the Vertex AI service-account assertion. Streams are replayed in every split size.
//! `TIANJI_BLESS=1` rewrites the goldens (review the diff before committing).

use crate::common::fixtures::{self, pretty};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tianji::providers::StreamTranslate;
use tianji::providers::gemini::{
    TranslateError, embed, native, request, response, stream::StreamTranslator, vertex,
};

const CREATED: u64 = 1_700_000_000;
const ID: &str = "chatcmpl-gemini01";

const DIR: &str = "gemini";

fn fixture(name: &str) -> String {
    fixtures::text(DIR, name)
}

fn json_fixture(name: &str) -> Value {
    fixtures::json(DIR, name)
}

fn golden(name: &str, got: &str) {
    fixtures::golden(DIR, name, got)
}

/// `input` through a fresh translator in one piece, checked against `golden_name`, then in
/// every split size 1..64, each giving the same bytes.
fn replay(input: &str, golden_name: &str, make: impl Fn() -> Box<dyn StreamTranslate>) {
    let whole = {
        let mut t = make();
        let mut out = t.feed(input.as_bytes());
        out.extend(t.finish());
        String::from_utf8(out).unwrap()
    };
    golden(golden_name, &whole);
    for split in 1..64 {
        let mut t = make();
        let mut out = Vec::new();
        for c in input.as_bytes().chunks(split) {
            out.extend(t.feed(c));
        }
        out.extend(t.finish());
        assert_eq!(String::from_utf8(out).unwrap(), whole, "split {split}");
    }
}

#[test]
fn chat_request_to_generate_content() {
    let out = request::to_generate_content(&json_fixture("chat_request.json")).unwrap();
    golden("gemini_request.json", &pretty(&out));
}

#[test]
fn generate_content_response_to_chat() {
    let resp = json_fixture("gemini_response.json");
    let chat = response::to_chat(&resp, "gemini-2.5-flash", ID, CREATED);
    golden("chat_response.json", &pretty(&chat));
    // the signature rides in the tool call id and goes back out on the next turn
    let call = &chat["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "call_gemini01_0__thought__c2lnbmF0dXJlLTI=");
    let next = json!({"messages": [{"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]});
    let out = request::to_generate_content(&next).unwrap();
    assert_eq!(
        out["contents"][0]["parts"][0]["thoughtSignature"],
        "c2lnbmF0dXJlLTI="
    );
    assert_eq!(
        out["contents"][1]["parts"][0]["functionResponse"]["name"],
        "get_weather"
    );
}

#[test]
fn stream_replayed_in_every_split() {
    replay(&fixture("stream.sse"), "stream_chunks.sse", || {
        Box::new(StreamTranslator::new("gemini-2.5-flash", ID, CREATED, true))
    });
    // without include_usage: no usage chunk, [DONE] still once
    let mut t = StreamTranslator::new("gemini-2.5-flash", ID, CREATED, false);
    let mut out = t.feed(fixture("stream.sse").as_bytes());
    out.extend(t.finish());
    out.extend(t.finish());
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("\"usage\""), "{text}");
    assert_eq!(text.matches("data: [DONE]").count(), 1);
}

#[test]
fn native_request_to_chat() {
    let req = json_fixture("gemini_in_request.json");
    let out = native::to_chat(&req, "my-deployment", true).unwrap();
    golden("chat_from_gemini.json", &pretty(&out));
    let plain = native::to_chat(&req, "my-deployment", false).unwrap();
    assert!(plain.get("stream").is_none() && plain.get("stream_options").is_none());
}

#[test]
fn chat_response_to_native() {
    // the chat answer of `generate_content_response_to_chat` (its golden), back to Gemini
    let chat = response::to_chat(
        &json_fixture("gemini_response.json"),
        "gemini-2.5-flash",
        ID,
        CREATED,
    );
    golden(
        "gemini_out_response.json",
        &pretty(&native::from_chat(&chat)),
    );
    assert_eq!(
        native::count_tokens_response(42),
        json!({"totalTokens": 42})
    );
}

#[test]
fn chat_chunks_to_native_stream_in_every_split() {
    replay(&fixture("chat_stream.sse"), "gemini_out_stream.sse", || {
        Box::new(native::ChunkTranslator::new())
    });
}

#[test]
fn embeddings_both_ways() {
    let req = json_fixture("embed_request.json");
    let out = embed::to_batch_embed("gemini-embedding-001", &req).unwrap();
    golden("gemini_embed_request.json", &pretty(&out));
    let resp = json_fixture("gemini_embed_response.json");
    golden(
        "embed_response.json",
        &pretty(&embed::to_openai("gemini-embedding-001", &resp, 11)),
    );
}

#[test]
fn bad_requests_are_refused() {
    let bad = [
        json!({"messages": "hi"}),
        json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "{nope"}}]}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "input_video"}]}]}),
        json!({"messages": [{"role": "tool", "tool_call_id": "unknown", "content": "x"}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]}),
        json!({"messages": [], "response_format": {"type": "json_schema"}}),
        json!({"messages": [], "tools": [{"type": "code_interpreter"}]}),
    ];
    for b in bad {
        assert!(
            matches!(
                request::to_generate_content(&b),
                Err(TranslateError::Invalid(_))
            ),
            "{b}"
        );
    }
    assert!(native::to_chat(&json!({"contents": {}}), "m", false).is_err());
    assert!(
        native::to_chat(
            &json!({"contents": [{"role": "system", "parts": []}]}),
            "m",
            false
        )
        .is_err()
    );
    assert!(embed::to_batch_embed("m", &json!({"input": [1, 2, 3]})).is_err());
}

#[test]
fn vertex_assertion_is_a_valid_rs256_jwt() {
    let sa = vertex::ServiceAccount::from_json(&fixture("service_account.json")).unwrap();
    assert_eq!(sa.project_id.as_deref(), Some("tianji-test"));
    assert_eq!(sa.token_uri, vertex::DEFAULT_TOKEN_URI);
    let debug = format!("{sa:?}");
    assert!(
        debug.contains("redacted") && !debug.contains("PRIVATE KEY"),
        "{debug}"
    );

    let jwt = sa.assertion(CREATED).unwrap();
    let (signed, sig) = jwt.rsplit_once('.').unwrap();
    let (header, claims) = signed.split_once('.').unwrap();
    let decode =
        |s: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap() };
    assert_eq!(
        decode(header),
        json!({"alg": "RS256", "typ": "JWT", "kid": "test-key-1"})
    );
    assert_eq!(
        decode(claims),
        json!({"iss": "tianji-test@tianji-test.iam.gserviceaccount.com",
            "scope": "https://www.googleapis.com/auth/cloud-platform",
            "aud": "https://oauth2.googleapis.com/token",
            "iat": CREATED, "exp": CREATED + 3600})
    );
    // verified with the public key openssl derived from the fixture's private key
    let pem = fixture("service_account_public.pem");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(b64).unwrap();
    let key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, der);
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    key.verify(signed.as_bytes(), &sig).unwrap();
    let mut tampered = signed.as_bytes().to_vec();
    tampered[0] ^= 1;
    assert!(key.verify(&tampered, &sig).is_err());

    let body = vertex::token_request_body(&jwt);
    assert!(body.starts_with(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=ey"
    ));
    assert!(body.ends_with(sig_tail(&jwt)));
}

/// The last characters of a JWT (base64url needs no form escaping).
fn sig_tail(jwt: &str) -> &str {
    &jwt[jwt.len() - 16..]
}
