//! Managed files across deployments: one upload with `target_model_names` reaches a deployment
//! of each named model under one unified id ("TianjiLLM_ManagedFileTable" maps it to each
//! provider's id); batches on each model from that id get their deployment's own file id and
//! are recorded in "TianjiLLM_ManagedObjectTable", so another instance on the same database
//! serves them and lists show each caller its own objects; deleting the file deletes every copy;
//! an upload failing on one deployment leaves no row and no copy behind.

use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::providers::provider;
use crate::common::{MASTER_KEY, Resp, TestGateway, send};

const BOUNDARY: &str = "mfiles-boundary";

/// A form with `fields` before the file and `after` after it.
fn form(fields: &[(&str, &str)], after: &[(&str, &str)]) -> Vec<u8> {
    let mut v = Vec::new();
    let field = |v: &mut Vec<u8>, name: &str, value: &str| {
        v.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    for (n, val) in fields {
        field(&mut v, n, val);
    }
    v.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n").as_bytes(),
    );
    v.extend_from_slice(b"{\"custom_id\":\"1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"m1\",\"messages\":[]}}\r\n");
    for (n, val) in after {
        field(&mut v, n, val);
    }
    v.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    v
}

async fn upload(gw: &TestGateway, key: &str, query: &str, body: Vec<u8>) -> Resp {
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
        Bytes::from(body),
    )
    .await
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

fn count(up: &MockUpstream, method: &str, path: &str) -> usize {
    up.requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

async fn file_rows(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM \"TianjiLLM_ManagedFileTable\" WHERE cardinality(flat_model_file_ids) > 1",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_file_used_by_two_deployments() {
    let db = TestDb::create().await;
    let a = MockUpstream::with(Arc::new(provider("a"))).await;
    let b = MockUpstream::with(Arc::new(provider("b"))).await;
    // a provider that refuses uploads
    let c_inner = provider("c");
    let c = MockUpstream::with(Arc::new(move |r: &Recorded| {
        if r.method == "POST" && r.path == "/v1/files" {
            return Reply::status(500, json!({"error": {"message": "storage unavailable"}}));
        }
        c_inner(r)
    }))
    .await;
    let yaml = format!(
        "model_list:
  - model_name: m1
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-a}}
  - model_name: m2
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-b}}
  - model_name: m3
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-c}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{}\"
",
        a.base(),
        b.base(),
        c.base(),
        db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let gw2 = TestGateway::start(&yaml).await;
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

    // the openai SDK: one upload to m1 and m2, a batch on each model from the same file id
    let out = crate::it::sdk::run_python_script(
        "managed_files_sdk.py",
        &gw.url(""),
        &alice,
        &["m1", "m2"],
    )
    .await;
    let seen: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let file_id = seen["file"].as_str().unwrap().to_string();
    let batches: Vec<String> = seen["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(file_id.starts_with("file-v2:gcm:"), "{file_id}");

    // each deployment got the file once, without the gateway's field, with its own key
    for (up, k) in [(&a, "sk-a"), (&b, "sk-b")] {
        let posts: Vec<Recorded> = up
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/files")
            .collect();
        assert_eq!(posts.len(), 1);
        let body = posts[0].text();
        assert!(body.contains("\"custom_id\": \"r1\""), "{body}");
        assert!(!body.contains("target_model_names"), "{body}");
        assert_eq!(
            posts[0].headers["authorization"],
            format!("Bearer {k}").as_str()
        );
    }
    assert_eq!(count(&c, "POST", "/v1/files"), 0);
    // each batch ran on its model's deployment with that deployment's copy
    for (up, tag) in [(&a, "a"), (&b, "b")] {
        let made: Vec<Recorded> = up
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/batches")
            .collect();
        assert_eq!(made.len(), 1, "{tag}");
        let sent = made[0].json();
        assert_eq!(sent["input_file_id"], format!("file-{tag}-in"));
        assert!(sent.get("model").is_none(), "{sent}");
    }
    // the providers saw their own ids only
    for up in [&a, &b] {
        assert!(
            up.requests()
                .iter()
                .all(|r| !r.path.contains("v2:gcm") && !r.text().contains("v2:gcm"))
        );
    }

    // the gateway's records
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT model_mappings, flat_model_file_ids, created_by, team_id, file_object FROM \"TianjiLLM_ManagedFileTable\" WHERE unified_file_id = $1",
            &[&file_id],
        )
        .await
        .unwrap();
    let mut flat: Vec<String> = row.get(1);
    flat.sort();
    assert_eq!(flat, ["file-a-in", "file-b-in"]);
    assert_eq!(row.get::<_, Value>(0).as_object().unwrap().len(), 2);
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("alice"));
    assert_eq!(row.get::<_, Option<String>>(3), None);
    assert_eq!(row.get::<_, Value>(4)["id"], file_id.as_str());
    for id in &batches {
        let r = client
            .query_one(
                "SELECT file_purpose, user_id, model_group, model_object_id, status FROM \"TianjiLLM_ManagedObjectTable\" WHERE unified_object_id = $1",
                &[id],
            )
            .await
            .unwrap();
        assert_eq!(r.get::<_, String>(0), "batch");
        assert_eq!(r.get::<_, String>(1), "alice");
        let group: String = r.get(2);
        assert_eq!(
            r.get::<_, String>(3),
            format!("batch_{}", if group == "m1" { "a" } else { "b" })
        );
        assert_eq!(r.get::<_, Option<String>>(4).as_deref(), Some("completed"));
    }

    // another instance on the same database serves them
    let mut groups = Vec::new();
    for id in &batches {
        let r = call(
            &gw2,
            &alice,
            Method::GET,
            &format!("/v1/batches/{id}"),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["id"], id.as_str());
        assert_eq!(r.json()["input_file_id"], file_id.as_str());
        let out = r.json()["output_file_id"].as_str().unwrap().to_string();
        let content = call(
            &gw2,
            &alice,
            Method::GET,
            &format!("/v1/files/{out}/content"),
            None,
        )
        .await;
        assert_eq!(content.status, 200, "{}", content.text());
        groups.push(content.text());
    }
    groups.sort();
    assert_eq!(
        groups,
        [
            crate::common::providers::file_content("/files/file-a-out/content"),
            crate::common::providers::file_content("/files/file-b-out/content"),
        ]
    );
    let r = call(
        &gw2,
        &alice,
        Method::GET,
        &format!("/v1/files/{file_id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], file_id.as_str());
    assert_eq!(r.json()["object"], "file");

    // lists: the caller's own, from any instance; ?model= keeps one model's
    let mine = call(&gw2, &alice, Method::GET, "/v1/batches", None).await;
    assert_eq!(mine.status, 200, "{}", mine.text());
    let mut want = batches.clone();
    want.sort();
    assert_eq!(ids(&mine.json()), want);
    let m1 = call(&gw2, &alice, Method::GET, "/v1/batches?model=m1", None).await;
    assert_eq!(m1.json()["data"].as_array().unwrap().len(), 1);
    let files = call(&gw2, &alice, Method::GET, "/v1/files", None).await;
    assert_eq!(files.status, 200, "{}", files.text());
    let listed = ids(&files.json());
    assert!(listed.contains(&file_id), "{listed:?}");
    // the batches' output files are listed too (read from their providers once)
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        files.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["object"] == "file")
    );
    for path in ["/v1/batches", "/v1/files", "/v1/fine_tuning/jobs"] {
        let r = call(&gw2, &bob, Method::GET, path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.json()["data"], json!([]), "{path}");
    }
    let all = call(&gw2, MASTER_KEY, Method::GET, "/v1/batches", None).await;
    assert_eq!(ids(&all.json()), want);

    // another key may use none of them
    let before = (a.requests().len(), b.requests().len());
    for (m, path) in [
        (Method::GET, format!("/v1/files/{file_id}")),
        (Method::GET, format!("/v1/files/{file_id}/content")),
        (Method::DELETE, format!("/v1/files/{file_id}")),
        (Method::GET, format!("/v1/batches/{}", batches[0])),
    ] {
        call(&gw2, &bob, m, &path, None).await.assert_error(403);
    }
    call(
        &gw,
        &bob,
        Method::POST,
        "/v1/batches",
        Some(json!({"input_file_id": file_id, "model": "m1",
            "endpoint": "/v1/chat/completions", "completion_window": "24h"})),
    )
    .await
    .assert_error(403);
    assert_eq!((a.requests().len(), b.requests().len()), before);

    // a batch must say which of the file's models; a model without a copy is refused
    let batch = |model: Option<&str>| {
        let mut v = json!({"input_file_id": file_id,
            "endpoint": "/v1/chat/completions", "completion_window": "24h"});
        if let Some(m) = model {
            v["model"] = json!(m);
        }
        v
    };
    let e = call(&gw, &alice, Method::POST, "/v1/batches", Some(batch(None)))
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("m1"),
        "{e}"
    );
    call(
        &gw,
        &alice,
        Method::POST,
        "/v1/batches",
        Some(batch(Some("m3"))),
    )
    .await
    .assert_error(400);
    // a fine-tuning job on m2's copy
    let r = call(
        &gw,
        &alice,
        Method::POST,
        "/v1/fine_tuning/jobs?model=m2",
        Some(json!({"training_file": file_id, "model": "gpt-4o-mini-2024-07-18"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["training_file"], file_id.as_str());
    let sent = b
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/v1/fine_tuning/jobs")
        .unwrap()
        .json();
    assert_eq!(sent["training_file"], "file-b-in");
    let jobs = call(&gw2, &alice, Method::GET, "/v1/fine_tuning/jobs", None).await;
    assert_eq!(
        ids(&jobs.json()),
        [r.json()["id"].as_str().unwrap().to_string()]
    );

    // a file on one deployment is listed as well, and forgotten when deleted
    let one = upload(&gw, &alice, "?model=m1", form(&[("purpose", "batch")], &[])).await;
    assert_eq!(one.status, 200, "{}", one.text());
    let one_id = one.json()["id"].as_str().unwrap().to_string();
    let listed = ids(&call(&gw2, &alice, Method::GET, "/v1/files", None)
        .await
        .json());
    assert!(listed.contains(&one_id), "{listed:?}");
    let r = call(
        &gw2,
        &alice,
        Method::DELETE,
        &format!("/v1/files/{one_id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = ids(&call(&gw2, &alice, Method::GET, "/v1/files", None)
        .await
        .json());
    assert!(!listed.contains(&one_id), "{listed:?}");

    // deleting the unified file deletes every copy, from any instance
    let r = call(
        &gw2,
        &alice,
        Method::DELETE,
        &format!("/v1/files/{file_id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"id": file_id, "object": "file", "deleted": true})
    );
    assert_eq!(
        count(&a, "DELETE", "/v1/files/file-a-in"),
        2,
        "and the one-deployment file"
    );
    assert_eq!(count(&b, "DELETE", "/v1/files/file-b-in"), 1);
    assert_eq!(file_rows(&db).await, 0);
    call(
        &gw,
        &alice,
        Method::GET,
        &format!("/v1/files/{file_id}"),
        None,
    )
    .await
    .assert_error(404);

    // an upload failing on one deployment: the copy made elsewhere is deleted, nothing recorded
    // (the field after the file: the form is read whole)
    let deletes = count(&a, "DELETE", "/v1/files/file-a-in");
    let r = upload(
        &gw,
        &alice,
        "",
        form(&[("purpose", "batch")], &[("target_model_names", "m1, m3")]),
    )
    .await;
    assert!(r.status.as_u16() >= 500, "{} {}", r.status, r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("storage unavailable"),
        "{}",
        r.text()
    );
    assert_eq!(count(&c, "POST", "/v1/files"), 1);
    assert_eq!(count(&a, "DELETE", "/v1/files/file-a-in"), deletes + 1);
    assert_eq!(file_rows(&db).await, 0);
    // every copy a provider made was deleted
    assert_eq!(
        count(&a, "POST", "/v1/files"),
        count(&a, "DELETE", "/v1/files/file-a-in")
    );

    // bad input: no model named; an unknown target; target_model_names naming nothing
    upload(&gw, &alice, "", form(&[("purpose", "batch")], &[]))
        .await
        .assert_error(400);
    upload(
        &gw,
        &alice,
        "",
        form(&[("target_model_names", "m1,nope")], &[]),
    )
    .await
    .assert_error(400);
    upload(&gw, &alice, "", form(&[("target_model_names", " , ")], &[]))
        .await
        .assert_error(400);
    assert_eq!(file_rows(&db).await, 0);
}

#[tokio::test]
async fn a_managed_upload_is_held_within_the_size_limit_and_needs_the_database() {
    let db = TestDb::create().await;
    let a = MockUpstream::with(Arc::new(provider("a"))).await;
    let b = MockUpstream::with(Arc::new(provider("b"))).await;
    let models = format!(
        "model_list:
  - model_name: m1
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-a}}
  - model_name: m2
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-b}}
",
        a.base(),
        b.base()
    );
    let gw = TestGateway::start(&format!(
        "{models}general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{}\"
  max_request_size_mb: 0.01
",
        db.url
    ))
    .await;
    let big = "x".repeat(20 * 1024);
    let r = upload(
        &gw,
        MASTER_KEY,
        "",
        form(&[("target_model_names", "m1,m2"), ("note", &big)], &[]),
    )
    .await;
    r.assert_error(413);
    // one deployment: streamed, not held
    let r = upload(&gw, MASTER_KEY, "?model=m1", form(&[("note", &big)], &[])).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(count(&a, "POST", "/v1/files"), 1);
    assert_eq!(count(&b, "POST", "/v1/files"), 0);
    // within the limit
    let r = upload(
        &gw,
        MASTER_KEY,
        "",
        form(&[("target_model_names", "m1,m2")], &[]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (
            count(&a, "POST", "/v1/files"),
            count(&b, "POST", "/v1/files")
        ),
        (2, 1)
    );

    // without a database: no unified ids, no lists (an admin may list a provider's)
    let nodb = TestGateway::start(&models).await;
    let e = upload(
        &nodb,
        MASTER_KEY,
        "",
        form(&[("target_model_names", "m1,m2")], &[]),
    )
    .await
    .assert_error(400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("database"),
        "{e}"
    );
    assert_eq!(
        (
            count(&a, "POST", "/v1/files"),
            count(&b, "POST", "/v1/files")
        ),
        (2, 1)
    );
    call(&nodb, MASTER_KEY, Method::GET, "/v1/batches", None)
        .await
        .assert_error(400);
    let r = call(&nodb, MASTER_KEY, Method::GET, "/v1/batches?model=m1", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
}
