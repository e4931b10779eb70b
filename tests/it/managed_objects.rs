//! Files, batches and fine-tuning jobs: ids sealed with owner and deployment, later calls go
//! back to the deployment that holds the object (two deployments serve the same model), only
//! the owner or an admin may use an id, uploads and contents stream through.

use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::providers::{file_content, provider};
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async, send};

const BOUNDARY: &str = "managed-boundary";

fn upload_form(model_field: Option<&str>) -> Vec<u8> {
    let mut v = Vec::new();
    let mut field = |name: &str, value: &str| {
        v.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    if let Some(m) = model_field {
        field("model", m);
    }
    field("purpose", "batch");
    v.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n").as_bytes(),
    );
    v.extend_from_slice(b"{\"custom_id\":\"1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt\",\"messages\":[]}}\n");
    v.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    v
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

async fn upload(gw: &TestGateway, key: &str, query: &str, model_field: Option<&str>) -> Resp {
    send(
        Method::POST,
        &gw.url(&format!("/v1/files{query}")),
        &[
            ("authorization", &format!("Bearer {key}")),
            (
                "content-type",
                &format!("multipart/form-data; boundary={BOUNDARY}"),
            ),
        ],
        Bytes::from(upload_form(model_field)),
    )
    .await
}

/// Which of the two mocks got requests since the counts `before`.
fn served_by(a: &MockUpstream, b: &MockUpstream, before: (usize, usize)) -> &'static str {
    match (a.requests().len() > before.0, b.requests().len() > before.1) {
        (true, false) => "a",
        (false, true) => "b",
        other => panic!("served by {other:?}"),
    }
}

#[tokio::test]
async fn files_batches_and_jobs_stay_with_their_deployment_and_owner() {
    let db = TestDb::create().await;
    let a = MockUpstream::with(Arc::new(provider("a"))).await;
    let b = MockUpstream::with(Arc::new(provider("b"))).await;
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: gpt
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-a}}
  - model_name: gpt
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-b}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{}\"
",
        a.base(),
        b.base(),
        db.url
    ))
    .await;
    let key = |user: &'static str| {
        let gw = &gw;
        async move {
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
    };
    let (alice, bob) = (key("alice").await, key("bob").await);

    let mut seen = std::collections::HashSet::new();
    // the router picks at random: go on past 8 rounds until both deployments served one
    for round in 0..40 {
        if round >= 8 && seen.len() == 2 {
            break;
        }
        // upload: the model as ?model=, or as a form field before the file (not passed on)
        let before = (a.requests().len(), b.requests().len());
        let r = if round % 2 == 0 {
            upload(&gw, &alice, "?model=gpt", None).await
        } else {
            upload(&gw, &alice, "", Some("gpt")).await
        };
        assert_eq!(r.status, 200, "{}", r.text());
        let owner = served_by(&a, &b, before);
        seen.insert(owner);
        let up = if owner == "a" { &a } else { &b };
        let sent = up.last();
        assert_eq!(
            sent.body,
            Bytes::from(upload_form(None)),
            "the form minus the model field"
        );
        assert_eq!(
            sent.headers["authorization"],
            format!("Bearer sk-{owner}").as_str()
        );
        let file_id = r.json()["id"].as_str().unwrap().to_string();
        assert!(file_id.starts_with("file-v2:gcm:"), "{file_id}");

        // every later call on the file goes to its deployment
        for (m, path) in [
            (Method::GET, format!("/v1/files/{file_id}")),
            (Method::GET, format!("/v1/files/{file_id}/content")),
        ] {
            let before = (a.requests().len(), b.requests().len());
            let r = call(&gw, &alice, m, &path, None).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            assert_eq!(served_by(&a, &b, before), owner, "{path}");
        }
        let content = call(
            &gw,
            &alice,
            Method::GET,
            &format!("/v1/files/{file_id}/content"),
            None,
        )
        .await;
        assert_eq!(
            content.text(),
            file_content(&format!("/files/file-{owner}-in/content"))
        );
        assert_eq!(
            content.header("content-type"),
            Some("application/octet-stream")
        );

        // a batch on the file: created, fetched and cancelled on the same deployment
        let before = (a.requests().len(), b.requests().len());
        let r = call(
            &gw,
            &alice,
            Method::POST,
            "/v1/batches",
            Some(json!({"input_file_id": file_id,
            "endpoint": "/v1/chat/completions", "completion_window": "24h"})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(served_by(&a, &b, before), owner);
        let sent = up
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.path == "/v1/batches")
            .unwrap();
        assert_eq!(sent.json()["input_file_id"], format!("file-{owner}-in"));
        let batch = r.json();
        let batch_id = batch["id"].as_str().unwrap().to_string();
        assert!(batch_id.starts_with("batch_"));
        assert_eq!(
            batch["input_file_id"],
            file_id.as_str(),
            "the same file id back"
        );
        for (m, path) in [
            (Method::GET, format!("/v1/batches/{batch_id}")),
            (Method::POST, format!("/v1/batches/{batch_id}/cancel")),
        ] {
            let before = (a.requests().len(), b.requests().len());
            let r = call(&gw, &alice, m, &path, None).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            assert_eq!(served_by(&a, &b, before), owner, "{path}");
            assert_eq!(r.json()["id"], batch_id.as_str());
        }
        // the output file id is the caller's too
        let done = call(
            &gw,
            &alice,
            Method::GET,
            &format!("/v1/batches/{batch_id}"),
            None,
        )
        .await
        .json();
        let out = done["output_file_id"].as_str().unwrap();
        let r = call(
            &gw,
            &alice,
            Method::GET,
            &format!("/v1/files/{out}/content"),
            None,
        )
        .await;
        assert_eq!(
            r.text(),
            file_content(&format!("/files/file-{owner}-out/content"))
        );

        // a fine-tuning job on the file
        let before = (a.requests().len(), b.requests().len());
        let r = call(
            &gw,
            &alice,
            Method::POST,
            "/v1/fine_tuning/jobs",
            Some(json!({"training_file": file_id, "model": "gpt-4o-mini-2024-07-18"})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(served_by(&a, &b, before), owner);
        let job = r.json();
        let job_id = job["id"].as_str().unwrap().to_string();
        assert!(job_id.starts_with("ftjob-"));
        assert!(
            job["result_files"][0]
                .as_str()
                .unwrap()
                .starts_with("file-")
        );
        for (m, path) in [
            (Method::GET, format!("/v1/fine_tuning/jobs/{job_id}")),
            (
                Method::POST,
                format!("/v1/fine_tuning/jobs/{job_id}/cancel"),
            ),
            (Method::GET, format!("/v1/fine_tuning/jobs/{job_id}/events")),
            (
                Method::GET,
                format!("/v1/fine_tuning/jobs/{job_id}/checkpoints"),
            ),
        ] {
            let before = (a.requests().len(), b.requests().len());
            let r = call(&gw, &alice, m, &path, None).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            assert_eq!(served_by(&a, &b, before), owner, "{path}");
        }

        // bob may use none of alice's ids; nothing reaches a provider
        let before = (a.requests().len(), b.requests().len());
        for (m, path) in [
            (Method::GET, format!("/v1/files/{file_id}")),
            (Method::GET, format!("/v1/files/{file_id}/content")),
            (Method::DELETE, format!("/v1/files/{file_id}")),
            (Method::GET, format!("/v1/batches/{batch_id}")),
            (Method::POST, format!("/v1/batches/{batch_id}/cancel")),
            (Method::GET, format!("/v1/fine_tuning/jobs/{job_id}")),
        ] {
            call(&gw, &bob, m, &path, None).await.assert_error(403);
        }
        call(
            &gw,
            &bob,
            Method::POST,
            "/v1/batches",
            Some(json!({"input_file_id": file_id,
            "endpoint": "/v1/chat/completions", "completion_window": "24h"})),
        )
        .await
        .assert_error(403);
        assert_eq!((a.requests().len(), b.requests().len()), before);

        // alice deletes her file
        let r = call(
            &gw,
            &alice,
            Method::DELETE,
            &format!("/v1/files/{file_id}"),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["id"], file_id.as_str());
        assert_eq!(r.json()["deleted"], true);
    }
    assert_eq!(seen.len(), 2, "both deployments were used");

    // ids the gateway did not issue: admins only (with the model named); lists: the caller's
    // own from the gateway's records, an admin naming a model the provider's
    call(
        &gw,
        &alice,
        Method::GET,
        "/v1/files/file-a-in?model=gpt",
        None,
    )
    .await
    .assert_error(403);
    let mine = call(&gw, &alice, Method::GET, "/v1/batches?model=gpt", None).await;
    assert_eq!(mine.status, 200, "{}", mine.text());
    let mine = mine.json();
    assert!(!mine["data"].as_array().unwrap().is_empty());
    assert!(
        mine["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["id"].as_str().unwrap().starts_with("batch_v2:gcm:"))
    );
    let theirs = call(&gw, &bob, Method::GET, "/v1/batches", None).await;
    assert_eq!(theirs.json()["data"], json!([]));
    let r = call(&gw, MASTER_KEY, Method::GET, "/v1/files?model=gpt", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["data"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("file-v2:gcm:")
    );
    let r = call(
        &gw,
        MASTER_KEY,
        Method::GET,
        "/v1/fine_tuning/jobs/ftjob-a?model=gpt",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // bad input
    call(&gw, &alice, Method::GET, "/v1/files/not-ours", None)
        .await
        .assert_error(403);
    call(&gw, MASTER_KEY, Method::GET, "/v1/files/file-x", None)
        .await
        .assert_error(400);
    let r = send(
        Method::POST,
        &gw.url("/v1/files"),
        &[
            ("authorization", &format!("Bearer {alice}")),
            ("content-type", "application/json"),
        ],
        Bytes::from_static(b"{}"),
    )
    .await;
    r.assert_error(400);
    upload(&gw, &alice, "", None).await.assert_error(400);
    call(
        &gw,
        &alice,
        Method::POST,
        "/v1/fine_tuning/jobs",
        Some(json!({"model": "gpt"})),
    )
    .await
    .assert_error(400);
    call(&gw, &alice, Method::PUT, "/v1/files", None)
        .await
        .assert_error(405);
    gw.gw.shutdown().await;

    // every call is in SpendLogs with its call type, on the caller's key
    let client = db.client().await;
    let count = |ct: &'static str| {
        let client = &client;
        async move {
            let r = client
                .query_one(
                    "SELECT count(*) FROM \"TianjiLLM_SpendLogs\" WHERE call_type = $1 AND status = 'success'",
                    &[&ct],
                )
                .await
                .unwrap();
            r.get::<_, i64>(0)
        }
    };
    for (ct, n) in [
        ("acreate_file", 8),
        ("afile_retrieve", 8),
        ("afile_content", 24),
        ("afile_delete", 8),
        ("acreate_batch", 8),
        ("aretrieve_batch", 16),
        ("acancel_batch", 8),
        ("acreate_fine_tuning_job", 8),
        ("acancel_fine_tuning_job", 8),
        ("afile_list", 1),
    ] {
        // rows are written in batches
        eventually_async(std::time::Duration::from_secs(10), || async {
            count(ct).await >= n
        })
        .await;
        assert_eq!(count(ct).await, n, "{ct}");
    }
}
