//! `/v1/ocr` against a Mistral OCR server we own (and Vertex AI's Mistral OCR with its token
//! endpoint): JSON and multipart requests, the answer's shape, the SpendLogs row and its cost,
//! key access, rate limits and budgets, provider errors, deployments that cannot do OCR.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::fixtures;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::providers::{self, VERTEX_TOKEN};
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async, send};

/// mistral/mistral-ocr-latest in the embedded price map.
const PER_PAGE: f64 = 0.004;
const PER_ANNOTATED_PAGE: f64 = 0.005;

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n";

/// Mistral's OCR answer: three pages, two annotated; a document at `/doc.pdf`; Vertex's token;
/// a 422 for documents named `bad`, a 401 for `unauthorized`.
fn mistral(r: &Recorded) -> Reply {
    if r.path == "/token" {
        return providers::reply(r);
    }
    if r.path == "/doc.pdf" {
        return Reply::Raw {
            status: 200,
            content_type: "application/pdf",
            chunks: vec![Bytes::from_static(PDF)],
        };
    }
    let text = r.text();
    if text.contains("\"bad\"") || text.contains("https://x/bad") {
        return Reply::status(
            422,
            json!({"object": "error", "message": "Invalid document", "type": "invalid_request_error", "code": null}),
        );
    }
    if text.contains("unauthorized") {
        return Reply::status(401, json!({"message": "Unauthorized", "request_id": "abc"}));
    }
    Reply::status(
        200,
        json!({
            "pages": [
                {"index": 0, "markdown": "# Title", "images": [{"id": "img-0.jpeg", "top_left_x": 1, "top_left_y": 2, "bottom_right_x": 3, "bottom_right_y": 4, "image_base64": null}], "dimensions": {"dpi": 200, "height": 2200, "width": 1700}},
                {"index": 1, "markdown": "page two", "images": [], "dimensions": {"dpi": 200, "height": 2200, "width": 1700}},
                {"index": 2, "markdown": "page three", "images": [], "dimensions": null}
            ],
            "model": "mistral-ocr-2505-completion",
            "document_annotation": "{\"title\": \"T\"}",
            "usage_info": {"pages_processed": 3, "pages_processed_annotation": 2, "doc_size_bytes": 4096}
        }),
    )
}

async fn mock() -> MockUpstream {
    MockUpstream::with(Arc::new(mistral)).await
}

fn models(up: &MockUpstream) -> String {
    format!(
        "model_list:\n  - model_name: ocr\n    tianji_params: {{model: mistral/mistral-ocr-latest, api_base: \"{b}\", api_key: sk-mistral}}\n  - model_name: claude\n    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{a}\", api_key: sk-ant}}\n  - model_name: plain\n    tianji_params: {{model: openai/my-ocr, api_base: \"http://{a}/custom\", api_key: sk-plain}}\n  - model_name: priced\n    tianji_params: {{model: mistral/mistral-ocr-latest, api_base: \"{b}\", api_key: sk-mistral, ocr_cost_per_page: 0.01, annotation_cost_per_page: 0.1}}\n",
        b = up.base(),
        a = up.addr
    )
}

async fn ocr_as(gw: &TestGateway, key: &str, body: &Value) -> Resp {
    send(
        Method::POST,
        &gw.url("/v1/ocr"),
        &[("authorization", &format!("Bearer {key}"))],
        Bytes::from(body.to_string()),
    )
    .await
}

fn doc(model: &str, url: &str) -> Value {
    json!({"model": model, "document": {"type": "document_url", "document_url": url}})
}

fn ocr_calls(up: &MockUpstream) -> Vec<Recorded> {
    up.requests()
        .into_iter()
        .filter(|r| r.path.ends_with("ocr") || r.path.ends_with(":rawPredict"))
        .collect()
}

#[tokio::test]
async fn json_documents_go_to_mistral_and_answer_in_shape() {
    let up = mock().await;
    let gw = TestGateway::start(&models(&up)).await;
    let asked = json!({
        "model": "ocr",
        "document": {"type": "document_url", "document_url": "https://arxiv.org/pdf/2201.04234"},
        "include_image_base64": true, "pages": [0, 1, 2], "image_limit": 4, "image_min_size": 10,
        "bbox_annotation_format": {"type": "json_schema", "json_schema": {"name": "b", "schema": {}}},
        "num_retries": 0
    });
    let r = gw.post("/v1/ocr", &asked.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "ocr");
    assert_eq!(v["model"], "ocr", "the model group asked for");
    assert_eq!(v["pages"].as_array().unwrap().len(), 3);
    assert_eq!(v["pages"][0]["markdown"], "# Title");
    assert_eq!(v["pages"][0]["images"][0]["id"], "img-0.jpeg");
    assert_eq!(v["pages"][0]["dimensions"]["dpi"], 200);
    assert_eq!(v["document_annotation"], "{\"title\": \"T\"}");
    assert_eq!(v["usage_info"]["pages_processed"], 3);
    assert_eq!(v["usage_info"]["doc_size_bytes"], 4096);
    let sent = up.last();
    assert_eq!(sent.path, "/v1/ocr");
    assert_eq!(
        sent.headers.get("authorization").unwrap(),
        "Bearer sk-mistral"
    );
    let mut want = asked.clone();
    want["model"] = json!("mistral-ocr-latest");
    want.as_object_mut().unwrap().remove("num_retries");
    assert_eq!(sent.json(), want, "passed on with the deployment's model");

    // an image, on the path without /v1
    let img = json!({"model": "ocr", "document": {"type": "image_url", "image_url": "https://example.com/receipt.png"}});
    let r = gw.post("/ocr", &img.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().json()["document"], img["document"]);
    assert_eq!(r.json()["object"], "ocr");

    // the provider's own answer
    let r = send(
        Method::POST,
        &gw.url("/v1/ocr"),
        &[
            ("authorization", &format!("Bearer {MASTER_KEY}")),
            ("x-req-format", "native"),
        ],
        Bytes::from(img.to_string()),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["model"], "mistral-ocr-2505-completion");
    assert!(r.json().get("object").is_none());

    // any OpenAI-compatible server with /ocr
    let r = gw
        .post("/v1/ocr", &doc("plain", "https://x/a.pdf").to_string())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/custom/ocr");
    assert_eq!(sent.json()["model"], "my-ocr");

    // priced per page: the map's rates, or the deployment's own
    let cost = |r: &Resp| {
        r.header("x-tianji-response-cost")
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let r = gw
        .post("/v1/ocr", &doc("ocr", "https://x/a.pdf").to_string())
        .await;
    assert!((cost(&r) - (3.0 * PER_PAGE + 2.0 * PER_ANNOTATED_PAGE)).abs() < 1e-9);
    let r = gw
        .post("/v1/ocr", &doc("priced", "https://x/a.pdf").to_string())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        (cost(&r) - (3.0 * 0.01 + 2.0 * 0.1)).abs() < 1e-9,
        "{:?}",
        r.header("x-tianji-response-cost")
    );

    // the request checked before anything is sent
    let n = ocr_calls(&up).len();
    for (bad, param) in [
        (json!({"model": "ocr"}), "document"),
        (
            json!({"model": "ocr", "document": {"type": "file", "file": "/etc/passwd"}}),
            "document",
        ),
        (
            json!({"model": "ocr", "document": {"type": "document_url"}}),
            "document",
        ),
        (
            json!({"model": "ocr", "document": {"type": "document_url", "document_url": "reducto://f"}}),
            "document",
        ),
        (
            json!({"model": "ocr", "document": {"type": "document_url", "document_url": "https://x"}, "req_format": "weird"}),
            "req_format",
        ),
    ] {
        let r = gw.post("/v1/ocr", &bad.to_string()).await;
        let e = r.assert_error(400);
        assert_eq!(e["error"]["param"], param, "{bad}");
    }
    assert_eq!(ocr_calls(&up).len(), n);
    gw.gw.shutdown().await;
}

/// A multipart form: `(name, (file name, content type) for a file, value)`.
/// A form part: its name, `(file name, content type)` for a file, its value.
type Part<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

fn form(parts: &[Part<'_>]) -> Vec<u8> {
    let mut v = Vec::new();
    for (name, file, value) in parts {
        v.extend_from_slice(b"--XyZ\r\n");
        match file {
            Some((f, ct)) => v.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: {ct}\r\n\r\n").as_bytes(),
            ),
            None => v.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        v.extend_from_slice(value);
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"--XyZ--\r\n");
    v
}

async fn upload(gw: &TestGateway, body: Vec<u8>) -> Resp {
    send(
        Method::POST,
        &gw.url("/v1/ocr"),
        &[
            ("authorization", &format!("Bearer {MASTER_KEY}")),
            ("content-type", "multipart/form-data; boundary=XyZ"),
        ],
        Bytes::from(body),
    )
    .await
}

#[tokio::test]
async fn multipart_uploads_become_data_uris() {
    let up = mock().await;
    let gw = TestGateway::start(&format!(
        "{}general_settings:\n  master_key: {MASTER_KEY}\n  max_request_size_mb: 1\n",
        models(&up)
    ))
    .await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    // a PDF sent as octet-stream: its type from its bytes
    let r = upload(
        &gw,
        form(&[
            ("file", Some(("scan", "application/octet-stream")), PDF),
            ("model", None, b"ocr"),
            ("pages", None, b"[0]"),
            ("include_image_base64", None, b"false"),
        ]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "ocr");
    let sent = up.last().json();
    assert_eq!(
        sent,
        json!({
            "document": {"type": "document_url", "document_url": format!("data:application/pdf;base64,{}", b64(PDF))},
            "model": "mistral-ocr-latest", "pages": [0], "include_image_base64": false,
        })
    );
    // an image: an image_url
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR rest of the image";
    let r = upload(
        &gw,
        form(&[
            ("model", None, b"ocr"),
            ("file", Some(("receipt.png", "image/png")), png),
        ]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last().json();
    assert_eq!(sent["document"]["type"], "image_url");
    assert_eq!(
        sent["document"]["image_url"],
        format!("data:image/png;base64,{}", b64(png))
    );

    let n = ocr_calls(&up).len();
    // no file, an empty file, a file over max_request_size_mb
    let r = upload(&gw, form(&[("model", None, b"ocr")])).await;
    assert!(
        r.assert_error(400)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`file`")
    );
    let r = upload(
        &gw,
        form(&[
            ("model", None, b"ocr"),
            ("file", Some(("a.pdf", "application/pdf")), b""),
        ]),
    )
    .await;
    r.assert_error(400);
    let big = vec![b'a'; 1536 * 1024];
    let r = upload(
        &gw,
        form(&[
            ("model", None, b"ocr"),
            ("file", Some(("a.pdf", "application/pdf")), &big),
        ]),
    )
    .await;
    r.assert_error(413);
    assert_eq!(ocr_calls(&up).len(), n, "nothing sent for a refused upload");
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn vertex_mistral_ocr_gets_the_token_and_documents_inline() {
    let up = mock().await;
    let mut sa = fixtures::json("gemini", "service_account.json");
    sa["token_uri"] = json!(format!("http://{}/token", up.addr));
    let creds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(creds.path(), sa.to_string()).unwrap();
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: vocr\n    tianji_params: {{model: vertex_ai/mistral-ocr-2505, api_base: \"http://{0}\", vertex_project: proj-1, vertex_location: us-central1, vertex_credentials: \"{1}\"}}\n  - model_name: vgem\n    tianji_params: {{model: vertex_ai/gemini-2.5-pro, api_base: \"http://{0}\", vertex_project: proj-1, vertex_credentials: \"{1}\"}}\nrag_settings:\n  allowed_url_hosts: [\"127.0.0.1\"]\n",
        up.addr,
        creds.path().display()
    ))
    .await;
    // a URL: fetched by the gateway and sent as a data URI
    let r = gw
        .post(
            "/v1/ocr",
            &doc("vocr", &format!("http://{}/doc.pdf", up.addr)).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "vocr");
    assert_eq!(r.json()["object"], "ocr");
    let calls = ocr_calls(&up);
    let sent = calls.last().unwrap();
    assert_eq!(
        sent.path,
        "/v1/projects/proj-1/locations/us-central1/publishers/mistralai/models/mistral-ocr-2505:rawPredict"
    );
    assert_eq!(
        sent.headers.get("authorization").unwrap(),
        &format!("Bearer {VERTEX_TOKEN}")
    );
    let body = sent.json();
    assert_eq!(body["model"], "mistral-ocr-2505");
    assert_eq!(
        body["document"]["document_url"],
        format!(
            "data:application/pdf;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(PDF)
        )
    );
    // a data URI goes as it is
    let inline = doc("vocr", "data:application/pdf;base64,JVBERi0=");
    let r = gw.post("/v1/ocr", &inline.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().json()["document"], inline["document"]);
    // a metadata address is never fetched
    let n = ocr_calls(&up).len();
    let r = gw
        .post(
            "/v1/ocr",
            &doc("vocr", "http://169.254.169.254/latest/meta-data").to_string(),
        )
        .await;
    r.assert_error(400);
    assert_eq!(ocr_calls(&up).len(), n);
    // a Gemini model on Vertex has no OCR
    let r = gw
        .post(
            "/v1/ocr",
            &doc("vgem", "data:application/pdf;base64,JVBERi0=").to_string(),
        )
        .await;
    r.assert_error(400);
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn non_ocr_deployments_and_provider_errors() {
    let up = mock().await;
    let gw = TestGateway::start(&models(&up)).await;
    let r = gw
        .post("/v1/ocr", &doc("claude", "https://x/a.pdf").to_string())
        .await;
    let e = r.assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot do OCR"),
        "{e}"
    );
    assert!(ocr_calls(&up).is_empty());
    // the provider's 4xx keeps its status
    let r = gw
        .post("/v1/ocr", &doc("ocr", "https://x/bad").to_string())
        .await;
    let e = r.assert_error(422);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid document"),
        "{e}"
    );
    let r = gw
        .post("/v1/ocr", &doc("ocr", "https://x/unauthorized").to_string())
        .await;
    r.assert_error(401);
    // an unknown model
    gw.post("/v1/ocr", &doc("nope", "https://x/a.pdf").to_string())
        .await
        .assert_error(400);
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn spend_row_access_rate_limits_and_budgets() {
    let db = TestDb::create().await;
    let up = mock().await;
    let gw = TestGateway::start(&format!(
        "{}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n  proxy_batch_write_at: 0.05\n",
        models(&up),
        db.url
    ))
    .await;
    let key = |body: Value| {
        let gw = &gw;
        async move {
            let r =
                super::admin_keys::call(gw, Method::POST, "/key/generate", MASTER_KEY, body).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["key"].as_str().unwrap().to_string()
        }
    };
    let k = key(json!({"models": ["ocr"]})).await;
    let r = ocr_as(&gw, &k, &doc("ocr", "https://x/a.pdf")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cost = 3.0 * PER_PAGE + 2.0 * PER_ANNOTATED_PAGE;
    let c = db.client().await;
    let q = "SELECT spend, call_type, model, model_group, custom_llm_provider, status, metadata, api_key FROM \"TianjiLLM_SpendLogs\" WHERE call_type = 'aocr'";
    let written = eventually_async(Duration::from_secs(10), || async {
        !c.query(q, &[]).await.unwrap().is_empty()
    })
    .await;
    assert!(written, "no aocr row");
    let rows = c.query(q, &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(
        (row.get::<_, f64>(0) - cost).abs() < 1e-9,
        "spend {}",
        row.get::<_, f64>(0)
    );
    assert_eq!(row.get::<_, String>(2), "mistral-ocr-latest");
    assert_eq!(row.get::<_, String>(3), "ocr");
    assert_eq!(row.get::<_, String>(4), "mistral");
    assert_eq!(row.get::<_, String>(5), "success");
    let meta: Value = row.get(6);
    assert_eq!(
        meta["usage_object"],
        json!({"pages_processed": 3, "pages_processed_annotation": 2})
    );
    let hash: String = row.get(7);
    // the key's spend moves
    let moved = eventually_async(Duration::from_secs(10), || async {
        let r = c
            .query(
                "SELECT spend FROM \"TianjiLLM_VerificationToken\" WHERE token = $1",
                &[&hash],
            )
            .await
            .unwrap();
        r.first()
            .is_some_and(|r| (r.get::<_, f64>(0) - cost).abs() < 1e-9)
    })
    .await;
    assert!(moved, "the key's spend");

    // a key without the model
    let other = key(json!({"models": ["claude"]})).await;
    let n = ocr_calls(&up).len();
    let r = ocr_as(&gw, &other, &doc("ocr", "https://x/a.pdf")).await;
    assert!(matches!(r.status.as_u16(), 401 | 403), "{}", r.text());
    // an rpm limit holds
    let limited = key(json!({"rpm_limit": 1})).await;
    assert_eq!(
        ocr_as(&gw, &limited, &doc("ocr", "https://x/a.pdf"))
            .await
            .status,
        200
    );
    let r = ocr_as(&gw, &limited, &doc("ocr", "https://x/a.pdf")).await;
    r.assert_error(429);
    // a budget: one call spends past it, the next is refused before any upstream call
    let budgeted = key(json!({"max_budget": cost / 2.0})).await;
    assert_eq!(
        ocr_as(&gw, &budgeted, &doc("ocr", "https://x/a.pdf"))
            .await
            .status,
        200
    );
    let r = ocr_as(&gw, &budgeted, &doc("ocr", "https://x/a.pdf")).await;
    let e = r.assert_error(429);
    assert_eq!(e["error"]["type"], "budget_exceeded", "{e}");
    assert_eq!(ocr_calls(&up).len(), n + 2, "refused calls sent nothing");
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn azure_ai_mistral_document_ai_takes_documents_inline() {
    let up = mock().await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: doc-ai\n    tianji_params: {{model: azure_ai/mistral-document-ai-2505, api_base: \"http://{}\", api_key: az-key}}\n",
        up.addr
    ))
    .await;
    let png = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(b"\x89PNGimg")
    );
    let r = gw
        .post(
            "/v1/ocr",
            &json!({"model": "doc-ai", "document": {"type": "image_url", "image_url": png}})
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "ocr");
    assert_eq!(r.json()["model"], "doc-ai");
    let sent = up.last();
    assert_eq!(sent.path, "/providers/mistral/azure/ocr");
    let auth = [
        sent.headers.get("api-key"),
        sent.headers.get("authorization"),
    ];
    assert!(
        auth.iter()
            .flatten()
            .any(|v| v.to_str().unwrap().contains("az-key")),
        "the deployment's key goes along: {:?}",
        sent.headers
    );
    assert_eq!(sent.json()["model"], "mistral-document-ai-2505");
    assert_eq!(sent.json()["document"]["image_url"], png.as_str());
}
