//! Bedrock translation against golden fixtures (`tests/fixtures/bedrock/`): Converse request
//! and response, a ConverseStream replayed in every split size, embeddings, the event-stream
//! decoder's refusals, and SigV4 against AWS's published test suite. `TIANJI_BLESS=1` rewrites
//! the goldens (review the diff before committing).

use crate::common::fixtures::{self, pretty};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tianji::providers::StreamTranslate;
use tianji::providers::bedrock::eventstream::{self, Decoder, EventStreamError, encode};
use tianji::providers::bedrock::sigv4::{self, Credentials, HttpRequest};
use tianji::providers::bedrock::{embed, model_path, request, response, stream::StreamTranslator};

const CREATED: u64 = 1_700_000_000;

const DIR: &str = "bedrock";

fn json_fixture(name: &str) -> Value {
    fixtures::json(DIR, name)
}

fn golden(name: &str, got: &str) {
    fixtures::golden(DIR, name, got)
}

#[test]
fn chat_request_to_converse() {
    let out = request::to_converse(&json_fixture("chat_request.json")).unwrap();
    golden("converse_request.json", &pretty(&out));
}

#[test]
fn converse_response_to_chat() {
    let chat = response::to_chat(
        &json_fixture("converse_response.json"),
        "bedrock/claude",
        "chatcmpl-bedrock-1",
        CREATED,
    );
    golden("chat_response.json", &pretty(&chat));
}

/// The ConverseStream of `stream_events.json`, as Bedrock frames it.
fn stream_bytes() -> Vec<u8> {
    let events = json_fixture("stream_events.json");
    let mut wire = Vec::new();
    for e in events.as_array().unwrap() {
        wire.extend(encode(
            &[
                (":event-type", e["event-type"].as_str().unwrap()),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            e["payload"].to_string().as_bytes(),
        ));
    }
    wire
}

fn translate(wire: &[u8], split: usize) -> String {
    let mut t = StreamTranslator::new("bedrock/claude", "chatcmpl-bedrock-1", CREATED, true);
    let mut out = Vec::new();
    for c in wire.chunks(split) {
        out.extend(t.feed(c));
    }
    out.extend(t.finish());
    String::from_utf8(out).unwrap()
}

#[test]
fn stream_replayed_in_every_split() {
    let wire = stream_bytes();
    let whole = translate(&wire, wire.len());
    golden("stream_chunks.sse", &whole);
    for split in 1..64 {
        assert_eq!(translate(&wire, split), whole, "split {split}");
    }
    // through the trait object, as the pipeline holds it
    let mut t: Box<dyn StreamTranslate> = Box::new(StreamTranslator::new(
        "bedrock/claude",
        "chatcmpl-bedrock-1",
        CREATED,
        true,
    ));
    let mut out = t.feed(&wire);
    out.extend(t.finish());
    out.extend(t.finish());
    assert_eq!(String::from_utf8(out).unwrap(), whole, "[DONE] only once");
}

#[test]
fn stream_without_metadata_still_ends() {
    let wire = stream_bytes();
    let events = json_fixture("stream_events.json");
    let last = events.as_array().unwrap().last().unwrap();
    let metadata = encode(
        &[
            (":event-type", "metadata"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        last["payload"].to_string().as_bytes(),
    );
    let cut = &wire[..wire.len() - metadata.len()];
    let out = translate(cut, 7);
    assert!(out.contains(r#""finish_reason":"tool_calls""#), "{out}");
    assert!(!out.contains(r#""usage""#), "{out}");
    assert!(out.ends_with("}\n\ndata: [DONE]\n\n"), "{out}");
    assert_eq!(out.matches("[DONE]").count(), 1);
}

#[test]
fn bad_requests_are_refused() {
    let bad = json!({"messages": "hi"});
    assert!(request::to_converse(&bad).is_err());
    let bad = json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "{nope"}}]}]});
    assert!(request::to_converse(&bad).is_err());
    let bad = json!({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]});
    assert!(request::to_converse(&bad).is_err());
    // the Anthropic fixture's remote image cannot be inlined by a pure translation
    let mut remote = json_fixture("chat_request.json");
    remote["messages"][1]["content"][2]["image_url"]["url"] = json!("https://example.com/cat.jpg");
    let err = request::to_converse(&remote).unwrap_err().to_string();
    assert!(err.contains("data: URL"), "{err}");
}

// ---- embeddings ----

#[test]
fn titan_embeddings() {
    let req = json_fixture("embed_request.json");
    let bodies = embed::requests("amazon.titan-embed-text-v2:0", &req).unwrap();
    golden("titan_requests.json", &pretty(&Value::Array(bodies)));
    let responses: Vec<Value> =
        serde_json::from_value(json_fixture("titan_responses.json")).unwrap();
    let out = embed::to_openai("embedder", &responses);
    golden("titan_embeddings.json", &pretty(&out));
}

#[test]
fn cohere_embeddings() {
    let req = json_fixture("embed_request.json");
    let bodies = embed::requests("cohere.embed-multilingual-v3", &req).unwrap();
    golden("cohere_requests.json", &pretty(&Value::Array(bodies)));
    let out = embed::to_openai("embedder", &[json_fixture("cohere_response.json")]);
    golden("cohere_embeddings.json", &pretty(&out));
}

// ---- event-stream decoder ----

fn decode(
    bytes: &[u8],
) -> (
    Decoder,
    Option<Result<eventstream::Message, EventStreamError>>,
) {
    let mut d = Decoder::new();
    d.push(bytes);
    let m = d.next_message();
    (d, m)
}

#[test]
fn corrupt_message_crc() {
    let mut wire = encode(&[(":event-type", "messageStart")], b"{}");
    let n = wire.len();
    wire[n - 6] ^= 0x20; // a payload byte
    let (d, m) = decode(&wire);
    assert!(
        matches!(m, Some(Err(EventStreamError::MessageCrc { .. }))),
        "{m:?}"
    );
    assert!(d.is_failed());
    // the translator ends the stream with an error
    let out = translate(&wire, 5);
    assert!(out.contains("checksum"), "{out}");
    assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
    assert_eq!(out.matches("[DONE]").count(), 1);
}

#[test]
fn corrupt_prelude_crc_fails_before_the_body_arrives() {
    let mut wire = encode(&[], b"x");
    wire[1] = 0x7f; // a huge total length, caught by the prelude CRC
    let (_, m) = decode(&wire[..12]);
    assert!(
        matches!(m, Some(Err(EventStreamError::PreludeCrc { .. }))),
        "{m:?}"
    );
}

/// A prelude with a valid CRC for these lengths.
fn prelude(total: u32, headers: u32) -> Vec<u8> {
    let mut p = total.to_be_bytes().to_vec();
    p.extend(headers.to_be_bytes());
    let crc = crc32fast::hash(&p);
    p.extend(crc.to_be_bytes());
    p
}

#[test]
fn oversize_and_inconsistent_lengths() {
    let (_, m) = decode(&prelude(16 * 1024 * 1024 + 1, 0));
    assert_eq!(
        m,
        Some(Err(EventStreamError::TooLarge(16 * 1024 * 1024 + 1)))
    );
    let (_, m) = decode(&prelude(u32::MAX, 0));
    assert_eq!(m, Some(Err(EventStreamError::TooLarge(u32::MAX))));
    let (_, m) = decode(&prelude(20, 10));
    assert_eq!(
        m,
        Some(Err(EventStreamError::Length {
            total: 20,
            headers: 10
        }))
    );
    let (_, m) = decode(&prelude(15, 0));
    assert!(
        matches!(m, Some(Err(EventStreamError::Length { .. }))),
        "{m:?}"
    );
}

#[test]
fn truncated_frame() {
    let wire = encode(
        &[(":event-type", "messageStart")],
        br#"{"role":"assistant"}"#,
    );
    for cut in [1, 11, 12, wire.len() - 1] {
        let (d, m) = decode(&wire[..cut]);
        assert_eq!(m, None, "cut {cut}");
        assert_eq!(d.buffered(), cut);
        let out = translate(&wire[..cut], 3);
        assert!(out.contains("ended inside a message"), "{out}");
    }
}

#[test]
fn exception_message() {
    let mut wire = encode(
        &[
            (":event-type", "messageStart"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        br#"{"role":"assistant"}"#,
    );
    wire.extend(encode(
        &[
            (":exception-type", "modelStreamErrorException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        br#"{"message":"Model produced invalid sequence as part of ToolUse.","originalStatusCode":400}"#,
    ));
    for split in 1..64 {
        let out = translate(&wire, split);
        let lines: Vec<&str> = out.split("\n\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 3, "{out}");
        let err: Value = serde_json::from_str(lines[1].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(
            err["error"]["message"],
            "Model produced invalid sequence as part of ToolUse."
        );
        assert!(err["error"]["type"].is_string(), "{err}");
        assert_eq!(lines[2], "data: [DONE]");
    }
}

// ---- SigV4 ----

/// AWS's SigV4 test suite: credentials, scope and time shared by every case.
fn suite_creds() -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

/// 2015-08-30T12:36:00Z
fn suite_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

fn suite_sign(
    creds: &Credentials,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<(String, String)> {
    let req = HttpRequest {
        method,
        uri,
        headers,
        body,
    };
    sigv4::sign(&req, creds, "us-east-1", "service", suite_time()).unwrap()
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> &'a str {
    hs.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {hs:?}"))
}

fn authz(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

#[test]
fn sigv4_get_vanilla() {
    let hs = suite_sign(
        &suite_creds(),
        "GET",
        "https://example.amazonaws.com/",
        &[],
        b"",
    );
    assert_eq!(
        header(&hs, "authorization"),
        authz(
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        )
    );
    assert_eq!(header(&hs, "x-amz-date"), "20150830T123600Z");
    assert_eq!(hs.len(), 2, "{hs:?}");
}

#[test]
fn sigv4_post_vanilla() {
    let hs = suite_sign(
        &suite_creds(),
        "POST",
        "https://example.amazonaws.com/",
        &[],
        b"",
    );
    assert_eq!(
        header(&hs, "authorization"),
        authz(
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        )
    );
}

#[test]
fn sigv4_get_vanilla_query_order_key_case() {
    let hs = suite_sign(
        &suite_creds(),
        "GET",
        "https://example.amazonaws.com/?Param2=value2&Param1=value1",
        &[],
        b"",
    );
    assert_eq!(
        header(&hs, "authorization"),
        authz(
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        )
    );
}

#[test]
fn sigv4_post_x_www_form_urlencoded() {
    let hs = suite_sign(
        &suite_creds(),
        "POST",
        "https://example.amazonaws.com/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"Param1=value1",
    );
    assert_eq!(
        header(&hs, "authorization"),
        authz(
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        )
    );
    assert!(
        hs.iter().all(|(n, _)| n != "x-amz-content-sha256"),
        "{hs:?}"
    );
}

#[test]
fn sigv4_get_vanilla_with_session_token() {
    // the AWS CRT / smithy-rs edition of the suite signs the token
    let creds = Credentials {
        session_token: Some(
            "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267".into(),
        ),
        ..suite_creds()
    };
    let hs = suite_sign(&creds, "GET", "https://example.amazonaws.com/", &[], b"");
    assert_eq!(
        header(&hs, "authorization"),
        authz(
            "host;x-amz-date;x-amz-security-token",
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        )
    );
    assert_eq!(
        header(&hs, "x-amz-security-token"),
        "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
    );
}

/// A Bedrock call: the model id's `:` is encoded in the path once when sent and twice in the
/// canonical request. Checked against a from-scratch SigV4 computation.
#[test]
fn sigv4_bedrock_path_is_double_encoded() {
    use ring::hmac;
    use sha2::{Digest, Sha256};

    let path = model_path("anthropic.claude-3-5-sonnet-20240620-v1:0", "converse");
    let uri = format!("https://bedrock-runtime.us-west-2.amazonaws.com{path}");
    let body = br#"{"messages":[]}"#;
    let req = HttpRequest {
        method: "POST",
        uri: &uri,
        headers: &[("content-type", "application/json")],
        body,
    };
    let hs = sigv4::sign(&req, &suite_creds(), "us-west-2", "bedrock", suite_time()).unwrap();

    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let creq = format!(
        "POST\n/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse\n\ncontent-type:application/json\nhost:bedrock-runtime.us-west-2.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n{}",
        hex(&Sha256::digest(body))
    );
    let sts = format!(
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-west-2/bedrock/aws4_request\n{}",
        hex(&Sha256::digest(creq.as_bytes()))
    );
    let mut key = b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec();
    for part in ["20150830", "us-west-2", "bedrock", "aws4_request"] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
            .as_ref()
            .to_vec();
    }
    let sig = hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), sts.as_bytes()).as_ref());
    assert_eq!(
        header(&hs, "authorization"),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-west-2/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={sig}"
        )
    );
}

/// Every single-byte corruption of the fixture stream: no panic, the same output however
/// split, and always exactly one `[DONE]` at the end.
#[test]
fn corrupted_streams_split_the_same() {
    let wire = stream_bytes();
    for i in 0..wire.len() {
        let mut bad = wire.clone();
        bad[i] ^= 0x41;
        let whole = translate(&bad, bad.len());
        assert_eq!(translate(&bad, 7), whole, "byte {i}");
        assert!(whole.ends_with("data: [DONE]\n\n"), "byte {i}: {whole}");
        assert_eq!(whole.matches("data: [DONE]").count(), 1, "byte {i}");
    }
}
