//! `/v1/videos` and `/v1/containers`: the openai SDK through the gateway to a Sora-shaped mock;
//! Veo long-running operations (Gemini API, Vertex AI) and RunwayML tasks polled into OpenAI's
//! video object; ids sealed to their owner; videos priced per second in SpendLogs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::providers::{self, VERTEX_TOKEN};
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async, send};

fn header<'a>(r: &'a Recorded, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

/// OpenAI's videos and containers APIs, as a mock.
fn sora(r: &Recorded) -> Reply {
    let ok = |v: Value| Reply::status(200, v);
    let video = |id: &str, status: &str| {
        json!({"id": id, "object": "video", "model": "sora-2", "status": status, "progress": 0,
               "created_at": 1_700_000_000, "seconds": "8", "size": "1280x720"})
    };
    let cfile = json!({"id": "cfile_1", "object": "container.file", "container_id": "cntr_up1",
                       "path": "/mnt/data/data.csv", "bytes": 8, "source": "user", "created_at": 1});
    let p = r.path.as_str();
    match (r.method.as_str(), p) {
        ("POST", "/v1/videos") => ok(video("video_up1", "queued")),
        ("GET", "/v1/videos/video_up1") => ok(video("video_up1", "completed")),
        ("GET", "/v1/videos/video_up1/content") => Reply::Raw {
            status: 200,
            content_type: "video/mp4",
            chunks: vec![
                Bytes::from_static(b"MP4-BYTES-"),
                Bytes::from(vec![b'v'; 1000]),
            ],
        },
        ("POST", "/v1/videos/video_up1/remix") => {
            let mut v = video("video_up2", "queued");
            v["remixed_from_video_id"] = json!("video_up1");
            v["seconds"] = json!("12");
            ok(v)
        }
        ("DELETE", x) if x.starts_with("/v1/videos/") => {
            ok(json!({"id": &x["/v1/videos/".len()..], "object": "video.deleted", "deleted": true}))
        }
        ("POST", "/v1/containers") => ok(
            json!({"id": "cntr_up1", "object": "container", "name": r.json()["name"], "status": "running",
                   "created_at": 1, "expires_after": r.json()["expires_after"]}),
        ),
        ("GET", "/v1/containers/cntr_up1") => ok(
            json!({"id": "cntr_up1", "object": "container", "name": "analysis", "status": "running", "created_at": 1}),
        ),
        ("DELETE", "/v1/containers/cntr_up1") => {
            ok(json!({"id": "cntr_up1", "object": "container.deleted", "deleted": true}))
        }
        ("POST", "/v1/containers/cntr_up1/files") => ok(cfile),
        ("GET", "/v1/containers/cntr_up1/files") => ok(
            json!({"object": "list", "data": [cfile], "first_id": "cfile_1", "last_id": "cfile_1", "has_more": false}),
        ),
        ("GET", "/v1/containers/cntr_up1/files/cfile_1") => ok(cfile),
        ("GET", "/v1/containers/cntr_up1/files/cfile_1/content") => Reply::Raw {
            status: 200,
            content_type: "text/csv",
            chunks: vec![Bytes::from_static(b"a,b\n1,2\n")],
        },
        ("DELETE", "/v1/containers/cntr_up1/files/cfile_1") => {
            ok(json!({"id": "cfile_1", "object": "container.file.deleted", "deleted": true}))
        }
        _ => Reply::status(
            404,
            json!({"error": {"message": format!("no route {p}"), "type": "invalid_request_error"}}),
        ),
    }
}

async fn call(
    gw: &TestGateway,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    send(
        method,
        &gw.url(path),
        &[("authorization", &format!("Bearer {key}"))],
        body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
    )
    .await
}

async fn new_key(gw: &TestGateway, user: &str) -> String {
    let r = call(
        gw,
        MASTER_KEY,
        Method::POST,
        "/key/generate",
        Some(json!({"user_id": user})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

/// SpendLogs rows of `call_type`: (spend, model group), waiting for `n` of them.
async fn spend_rows(db: &TestDb, call_type: &str, n: usize) -> Vec<(f64, String)> {
    let client = db.client().await;
    let q = "SELECT spend, model_group FROM \"TianjiLLM_SpendLogs\" WHERE call_type = $1 ORDER BY \"startTime\"";
    let written = eventually_async(Duration::from_secs(15), || async {
        client.query(q, &[&call_type]).await.unwrap().len() >= n
    })
    .await;
    assert!(written, "{n} {call_type} rows were not written");
    client
        .query(q, &[&call_type])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, f64>(0), r.get::<_, String>(1)))
        .collect()
}

#[tokio::test]
async fn openai_sdk_videos_and_containers_through_the_gateway() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(sora)).await;
    let yaml = format!(
        "model_list:
  - model_name: sora
    tianji_params: {{model: openai/sora-2, api_base: \"{}\", api_key: sk-up}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{}\"
",
        up.base(),
        db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let out = crate::it::sdk::run_python_script(
        "videos_containers_sdk.py",
        &gw.url(""),
        MASTER_KEY,
        &["sora"],
    )
    .await;
    let seen: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(seen["video"].as_str().unwrap().starts_with("video_"));

    let reqs = up.requests();
    // the form went through with the deployment's model and the image
    let create = reqs
        .iter()
        .find(|r| r.method == Method::POST && r.path == "/v1/videos")
        .unwrap();
    assert_eq!(header(create, "authorization"), Some("Bearer sk-up"));
    let form = create.text();
    assert!(form.contains("name=\"model\"\r\n\r\nsora-2\r\n"), "{form}");
    assert!(
        form.contains("\u{1a}\nfake"),
        "the image reached the provider"
    );
    // the provider saw its own ids only
    assert!(
        reqs.iter()
            .all(|r| !r.path.contains("v2:gcm") && !r.path.contains("tj:")),
        "{:?}",
        reqs.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    // videos cost their seconds: sora-2 is 0.10 per second (8 s, the remix 12 s)
    let made = spend_rows(&db, "avideo_generation", 1).await;
    assert!((made[0].0 - 0.8).abs() < 1e-9, "{made:?}");
    assert_eq!(made[0].1, "sora");
    let remix = spend_rows(&db, "avideo_remix", 1).await;
    assert!((remix[0].0 - 1.2).abs() < 1e-9, "{remix:?}");
    for t in [
        "avideo_status",
        "avideo_content",
        "avideo_delete",
        "acreate_container",
        "aretrieve_container",
        "aupload_container_file",
        "alist_container_files",
        "aretrieve_container_file_content",
        "adelete_container",
    ] {
        spend_rows(&db, t, 1).await;
    }
}

#[tokio::test]
async fn videos_and_containers_are_their_owners_only() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(sora)).await;
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: sora
    tianji_params: {{model: openai/sora-2, api_base: \"{}\", api_key: sk-up}}
  - model_name: claude
    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_key: k}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{}\"
",
        up.base(),
        db.url
    ))
    .await;
    let (alice, bob) = (new_key(&gw, "alice").await, new_key(&gw, "bob").await);
    let ask = json!({"model": "sora", "prompt": "waves", "seconds": "8"});
    let r = call(&gw, &alice, Method::POST, "/v1/videos", Some(ask)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let vid = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(up.last().json()["model"], "sora-2");
    let r = call(
        &gw,
        &alice,
        Method::POST,
        "/v1/containers?model=sora",
        Some(json!({"name": "box"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cid = r.json()["id"].as_str().unwrap().to_string();

    for path in [
        format!("/v1/videos/{vid}"),
        format!("/v1/videos/{vid}/content"),
        format!("/v1/containers/{cid}"),
        format!("/v1/containers/{cid}/files"),
    ] {
        let r = call(&gw, &bob, Method::GET, &path, None).await;
        r.assert_error(403);
        let r = call(&gw, &alice, Method::GET, &path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let r = call(
        &gw,
        &bob,
        Method::DELETE,
        &format!("/v1/videos/{vid}"),
        None,
    )
    .await;
    r.assert_error(403);
    // lists are per owner; an admin sees both
    let ids = |r: Resp| -> Vec<String> {
        r.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(call(&gw, &alice, Method::GET, "/v1/videos", None).await),
        std::slice::from_ref(&vid)
    );
    assert!(ids(call(&gw, &bob, Method::GET, "/v1/videos", None).await).is_empty());
    assert_eq!(
        ids(call(&gw, &alice, Method::GET, "/v1/containers", None).await),
        std::slice::from_ref(&cid)
    );
    assert!(ids(call(&gw, &bob, Method::GET, "/v1/containers", None).await).is_empty());
    // ids the gateway did not issue are for admins
    let r = call(&gw, &bob, Method::GET, "/v1/videos/video_up1", None).await;
    r.assert_error(403);
    // bad input: no prompt, a model that makes no videos, no model at all
    let r = call(
        &gw,
        &alice,
        Method::POST,
        "/v1/videos",
        Some(json!({"model": "sora"})),
    )
    .await;
    r.assert_error(400);
    let r = call(
        &gw,
        &alice,
        Method::POST,
        "/v1/videos",
        Some(json!({"model": "claude", "prompt": "x"})),
    )
    .await;
    let e = r.assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not generate videos"),
        "{e}"
    );
    let r = call(
        &gw,
        &alice,
        Method::POST,
        "/v1/videos",
        Some(json!({"prompt": "x"})),
    )
    .await;
    r.assert_error(400);
    // an upstream 4xx stays a 4xx
    let r = call(
        &gw,
        MASTER_KEY,
        Method::GET,
        "/v1/videos/video_missing?model=sora",
        None,
    )
    .await;
    r.assert_error(404);
}

/// The Gemini API's Veo: an operation running for its first two reads, then done with a file
/// URI.
fn gemini_veo(reads: &AtomicUsize, r: &Recorded) -> Reply {
    let op = "/v1beta/models/veo-3.1-generate-preview/operations/op123";
    let polls = r.path == op && reads.fetch_add(1, Ordering::SeqCst) < 2;
    match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v1beta/models/veo-3.1-generate-preview:predictLongRunning") => Reply::status(
            200,
            json!({"name": "models/veo-3.1-generate-preview/operations/op123"}),
        ),
        ("GET", "/v1beta/models/veo-3.1-generate-preview/operations/op123") if polls => {
            Reply::status(
                200,
                json!({"name": "models/veo-3.1-generate-preview/operations/op123", "done": false,
                       "metadata": {"progressPercent": 30}}),
            )
        }
        ("GET", "/v1beta/models/veo-3.1-generate-preview/operations/op123") => Reply::status(
            200,
            json!({"name": "models/veo-3.1-generate-preview/operations/op123", "done": true,
                   "response": {"generateVideoResponse": {"generatedSamples": [{"video": {"uri": format!("http://{}/v1beta/files/vid1:download?alt=media", header(r, "host").unwrap_or(""))}}]}}}),
        ),
        ("GET", "/v1beta/files/vid1:download") => Reply::Raw {
            status: 200,
            content_type: "video/mp4",
            chunks: vec![Bytes::from_static(b"VEO-VIDEO")],
        },
        _ => Reply::status(
            404,
            json!({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}),
        ),
    }
}

#[tokio::test]
async fn veo_operations_become_openai_video_objects() {
    let db = TestDb::create().await;
    let reads = Arc::new(AtomicUsize::new(0));
    let up = MockUpstream::with(Arc::new(move |r: &Recorded| gemini_veo(&reads, r))).await;
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: veo
    tianji_params: {{model: gemini/veo-3.1-generate-preview, api_base: \"http://{}\", api_key: g-key}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{}\"
",
        up.addr,
        db.url
    ))
    .await;
    let key = new_key(&gw, "carol").await;
    let png = format!(
        "data:image/png;base64,{}",
        base64_simd::STANDARD.encode_to_string(b"PNGDATA")
    );
    let r = call(
        &gw,
        &key,
        Method::POST,
        "/v1/videos",
        Some(
            json!({"model": "veo", "prompt": "a fox", "size": "720x1280", "input_reference": png}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["object"].as_str(), v["status"].as_str()),
        (Some("video"), Some("queued"))
    );
    assert_eq!(v["seconds"], "8");
    assert_eq!(v["size"], "720x1280");
    let id = v["id"].as_str().unwrap().to_string();
    let sent = up.last();
    assert_eq!(header(&sent, "x-goog-api-key"), Some("g-key"));
    assert_eq!(
        sent.json(),
        json!({"instances": [{"prompt": "a fox", "image": {"bytesBase64Encoded": base64_simd::STANDARD.encode_to_string(b"PNGDATA"), "mimeType": "image/png"}}],
               "parameters": {"durationSeconds": 8, "aspectRatio": "9:16"}})
    );
    // still running
    let r = call(&gw, &key, Method::GET, &format!("/v1/videos/{id}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "in_progress");
    assert_eq!(r.json()["progress"], 30);
    // not ready: no content yet
    let r = call(
        &gw,
        &key,
        Method::GET,
        &format!("/v1/videos/{id}/content"),
        None,
    )
    .await;
    r.assert_error(400);
    // done
    let r = call(&gw, &key, Method::GET, &format!("/v1/videos/{id}"), None).await;
    assert_eq!(r.json()["status"], "completed");
    assert_eq!(r.json()["id"], id.as_str());
    let r = call(
        &gw,
        &key,
        Method::GET,
        &format!("/v1/videos/{id}/content"),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, Bytes::from_static(b"VEO-VIDEO"));
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    let dl = up.last();
    assert_eq!(dl.path, "/v1beta/files/vid1:download");
    assert_eq!(
        header(&dl, "x-goog-api-key"),
        Some("g-key"),
        "same host: the key goes along"
    );
    // remix is OpenAI's only
    let r = call(
        &gw,
        &key,
        Method::POST,
        &format!("/v1/videos/{id}/remix"),
        Some(json!({"prompt": "again"})),
    )
    .await;
    r.assert_error(400);
    // listed with its last status; deleted from the listing
    let r = call(&gw, &key, Method::GET, "/v1/videos", None).await;
    assert_eq!(r.json()["data"][0]["status"], "completed", "{}", r.text());
    let r = call(&gw, &key, Method::DELETE, &format!("/v1/videos/{id}"), None).await;
    assert_eq!(r.json()["deleted"], true);
    let r = call(&gw, &key, Method::GET, "/v1/videos", None).await;
    assert_eq!(r.json()["data"], json!([]));
    // veo-3.1-generate-preview: 0.40 per second, 8 seconds
    let rows = spend_rows(&db, "avideo_generation", 1).await;
    assert!((rows[0].0 - 3.2).abs() < 1e-9, "{rows:?}");
}

#[tokio::test]
async fn vertex_veo_is_polled_with_fetch_predict_operation() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        let model = "/v1/projects/proj-1/locations/us-central1/publishers/google/models/veo-3.0-generate-001";
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/token") => providers::reply(r),
            ("POST", p) if p == format!("{model}:predictLongRunning") => Reply::status(
                200,
                json!({"name": format!("projects/proj-1/locations/us-central1/publishers/google/models/veo-3.0-generate-001/operations/v9")}),
            ),
            ("POST", p) if p == format!("{model}:fetchPredictOperation") => Reply::status(
                200,
                json!({"name": r.json()["operationName"], "done": true,
                       "response": {"videos": [{"bytesBase64Encoded": base64_simd::STANDARD.encode_to_string(b"VERTEX-MP4"), "mimeType": "video/mp4"}]}}),
            ),
            _ => Reply::status(404, json!({"error": {"code": 404, "message": "nope"}})),
        }
    }))
    .await;
    let mut sa = crate::common::fixtures::json("gemini", "service_account.json");
    sa["token_uri"] = json!(format!("http://{}/token", up.addr));
    let creds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(creds.path(), sa.to_string()).unwrap();
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: veo\n    tianji_params: {{model: vertex_ai/veo-3.0-generate-001, api_base: \"http://{}\", vertex_project: proj-1, vertex_credentials: \"{}\"}}\n",
        up.addr,
        creds.path().display()
    ))
    .await;
    let r = gw
        .post(
            "/v1/videos",
            &json!({"model": "veo", "prompt": "rain", "seconds": 4}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["seconds"], "4");
    let r = gw.get(&format!("/v1/videos/{id}")).await;
    assert_eq!(r.json()["status"], "completed", "{}", r.text());
    let r = gw.get(&format!("/v1/videos/{id}/content")).await;
    assert_eq!(r.body, Bytes::from_static(b"VERTEX-MP4"));
    let calls: Vec<_> = up
        .requests()
        .into_iter()
        .filter(|r| r.path != "/token")
        .collect();
    assert_eq!(calls.len(), 3);
    for c in &calls {
        assert_eq!(
            header(c, "authorization"),
            Some(format!("Bearer {VERTEX_TOKEN}").as_str())
        );
    }
    assert_eq!(
        calls[1].json()["operationName"],
        "projects/proj-1/locations/us-central1/publishers/google/models/veo-3.0-generate-001/operations/v9"
    );
}

#[tokio::test]
async fn runwayml_tasks_with_an_uploaded_image() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/v1/image_to_video") => Reply::status(200, json!({"id": "task-7"})),
            ("GET", "/v1/tasks/task-7") => Reply::status(
                200,
                json!({"id": "task-7", "status": "SUCCEEDED", "createdAt": "2026-01-01T00:00:00Z",
                       "output": [format!("http://{}/cdn/task-7.mp4", header(r, "host").unwrap_or(""))]}),
            ),
            ("GET", "/cdn/task-7.mp4") => Reply::Raw {
                status: 200,
                content_type: "video/mp4",
                chunks: vec![Bytes::from_static(b"RUNWAY")],
            },
            ("DELETE", "/v1/tasks/task-7") => Reply::Raw {
                status: 204,
                content_type: "application/json",
                chunks: vec![],
            },
            _ => Reply::status(404, json!({"error": "not found"})),
        }
    }))
    .await;
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: runway
    tianji_params: {{model: runwayml/gen4_turbo, api_base: \"{}\", api_key: rw-key}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{}\"
",
        up.base(),
        db.url
    ))
    .await;
    let b = "vid-boundary";
    let mut form = Vec::new();
    for (k, v) in [
        ("model", "runway"),
        ("prompt", "a wave"),
        ("seconds", "10"),
        ("size", "1280x720"),
    ] {
        form.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    form.extend_from_slice(
        format!("--{b}\r\nContent-Disposition: form-data; name=\"input_reference\"; filename=\"in.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nJPEGDATA\r\n--{b}--\r\n").as_bytes(),
    );
    let r = send(
        Method::POST,
        &gw.url("/v1/videos"),
        &[
            ("authorization", &format!("Bearer {MASTER_KEY}")),
            (
                "content-type",
                &format!("multipart/form-data; boundary={b}"),
            ),
        ],
        Bytes::from(form),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let sent = up.last();
    assert_eq!(header(&sent, "authorization"), Some("Bearer rw-key"));
    assert_eq!(header(&sent, "x-runway-version"), Some("2024-11-06"));
    assert_eq!(
        sent.json(),
        json!({"model": "gen4_turbo", "promptText": "a wave", "ratio": "1280:720", "duration": 10,
               "promptImage": format!("data:image/jpeg;base64,{}", base64_simd::STANDARD.encode_to_string(b"JPEGDATA"))})
    );
    let r = gw.get(&format!("/v1/videos/{id}")).await;
    assert_eq!(r.json()["status"], "completed", "{}", r.text());
    let r = gw.get(&format!("/v1/videos/{id}/content")).await;
    assert_eq!(r.body, Bytes::from_static(b"RUNWAY"));
    assert!(
        header(&up.last(), "authorization").is_none(),
        "the CDN gets no key"
    );
    let r = call(
        &gw,
        MASTER_KEY,
        Method::DELETE,
        &format!("/v1/videos/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().path, "/v1/tasks/task-7");
    // gen4_turbo: 0.05 per second, 10 seconds
    let rows = spend_rows(&db, "avideo_generation", 1).await;
    assert!((rows[0].0 - 0.5).abs() < 1e-9, "{rows:?}");
}

#[tokio::test]
async fn without_a_model_group_the_environments_openai_credentials_serve() {
    let up = MockUpstream::with(Arc::new(sora)).await;
    let gw = TestGateway::start(&format!(
        "environment_variables:\n  OPENAI_API_KEY: sk-env\n  OPENAI_API_BASE: \"{}\"\ngeneral_settings:\n  master_key: {MASTER_KEY}\n",
        up.base()
    ))
    .await;
    let r = call(
        &gw,
        MASTER_KEY,
        Method::POST,
        "/v1/videos",
        Some(json!({"prompt": "clouds"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(header(&sent, "authorization"), Some("Bearer sk-env"));
    assert_eq!(sent.json()["model"], "sora-2");
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = call(
        &gw,
        MASTER_KEY,
        Method::GET,
        &format!("/v1/videos/{id}"),
        None,
    )
    .await;
    assert_eq!(r.json()["status"], "completed", "{}", r.text());
    let r = call(
        &gw,
        MASTER_KEY,
        Method::POST,
        "/v1/containers",
        Some(json!({"name": "analysis"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().path, "/v1/containers");
}

#[tokio::test]
async fn azure_sora_goes_through_the_v1_api() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        let mut inner = r.clone();
        inner.path = r.path.replacen("/openai", "", 1);
        sora(&inner)
    }))
    .await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: sora\n    tianji_params: {{model: azure/sora-2, api_base: \"http://{}\", api_key: az-key}}\n",
        up.addr
    ))
    .await;
    let r = gw
        .post(
            "/v1/videos",
            &json!({"model": "sora", "prompt": "tides", "seconds": "8"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/openai/v1/videos");
    assert_eq!(header(&sent, "api-key"), Some("az-key"));
    assert_eq!(sent.json()["model"], "sora-2");
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = gw.get(&format!("/v1/videos/{id}/content")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.starts_with(b"MP4-BYTES-"));
    assert_eq!(up.last().path, "/openai/v1/videos/video_up1/content");
}

#[tokio::test]
async fn a_spent_budget_refuses_the_next_video_before_the_call() {
    let db = TestDb::create().await;
    let reads = Arc::new(AtomicUsize::new(0));
    let up = MockUpstream::with(Arc::new(move |r: &Recorded| gemini_veo(&reads, r))).await;
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: veo
    tianji_params: {{model: gemini/veo-3.1-generate-preview, api_base: \"http://{}\", api_key: g-key}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{}\"
",
        up.addr, db.url
    ))
    .await;
    let r = call(
        &gw,
        MASTER_KEY,
        Method::POST,
        "/key/generate",
        Some(json!({"max_budget": 1.0})),
    )
    .await;
    let key = r.json()["key"].as_str().unwrap().to_string();
    let ask = json!({"model": "veo", "prompt": "a long take"});
    // 8 s at 0.40: 3.20, reserved when admitted and booked when made
    let r = call(&gw, &key, Method::POST, "/v1/videos", Some(ask.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.requests().len(), 1);
    let r = call(&gw, &key, Method::POST, "/v1/videos", Some(ask)).await;
    assert!(r.status == 400 || r.status == 429, "{}", r.text());
    let e = r.json();
    assert!(
        e["error"]["type"].as_str().unwrap_or("").contains("budget"),
        "{e}"
    );
    assert_eq!(up.requests().len(), 1, "nothing more was sent");
    let booked = eventually_async(Duration::from_secs(15), || async {
        let r = call(&gw, &key, Method::GET, "/key/info", None).await;
        let spend = r.json()["info"]["spend"].as_f64().unwrap_or_default();
        (spend - 3.2).abs() < 1e-9
    })
    .await;
    assert!(booked, "the key's spend became the video's price");
}

#[tokio::test]
async fn a_mock_deployment_makes_a_finished_video_without_a_provider() {
    let gw = TestGateway::start(
        "model_list:\n  - model_name: demo\n    tianji_params: {model: openai/demo, mock_response: hi}\n",
    )
    .await;
    let r = gw
        .post(
            "/v1/videos",
            &json!({"model": "demo", "prompt": "a demo", "seconds": "4"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "completed");
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = gw.get(&format!("/v1/videos/{id}")).await;
    assert_eq!(r.json()["status"], "completed", "{}", r.text());
    let r = gw.get(&format!("/v1/videos/{id}/content")).await;
    assert_eq!(r.body, Bytes::from_static(b"tianji mock video"));
}
