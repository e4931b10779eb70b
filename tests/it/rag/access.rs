//! Who may use a store (`object_permission.vector_stores`, `allowed_vector_store_indexes`,
//! ownership), and a store ingested on one instance searched on another.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::*;
use crate::common::{MASTER_KEY, TestGateway, eventually_async};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_uses_only_the_stores_it_owns_or_was_granted() {
    let s = setup("").await;
    let owner = key(&s.gw, json!({})).await;
    let r = ingest_upload(
        &s.gw,
        &owner,
        json!({"embedding": {"model": "emb"}}),
        ("handbook.txt", "text/plain", HANDBOOK.as_bytes()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let vs = r.json()["vector_store_id"].as_str().unwrap().to_string();

    // a stranger neither sees nor searches nor queries it
    let stranger = key(&s.gw, json!({})).await;
    search(&s.gw, &stranger, &vs, "vacation")
        .await
        .assert_error(404);
    let listed = call(
        &s.gw,
        Method::GET,
        "/v1/vector_stores",
        &stranger,
        Value::Null,
    )
    .await
    .json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "{listed}");
    let q = json!({"model": "chat", "messages": [{"role": "user", "content": "vacation?"}],
        "retrieval_config": {"vector_store_id": vs}});
    call(&s.gw, Method::POST, "/v1/rag/query", &stranger, q)
        .await
        .assert_error(404);
    let opts = json!({"vector_store": {"vector_store_id": vs}});
    ingest_upload(
        &s.gw,
        &stranger,
        opts.clone(),
        ("x.txt", "text/plain", b"salary"),
    )
    .await
    .assert_error(404);

    // granted by id: searches, cannot change
    let reader = key(&s.gw, json!({"object_permission": {"vector_stores": [vs]}})).await;
    let r = search(&s.gw, &reader, &vs, "vacation").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.json()["data"].as_array().unwrap().is_empty());
    ingest_upload(
        &s.gw,
        &reader,
        opts.clone(),
        ("x.txt", "text/plain", b"salary"),
    )
    .await
    .assert_error(403);
    call(
        &s.gw,
        Method::DELETE,
        &format!("/v1/vector_stores/{vs}"),
        &reader,
        Value::Null,
    )
    .await
    .assert_error(403);

    // an index grant with write: adds files
    let writer = key(&s.gw, json!({"allowed_vector_store_indexes": [{"index_name": vs, "index_permissions": ["read", "write"]}]})).await;
    let r = ingest_upload(
        &s.gw,
        &writer,
        opts,
        ("x.txt", "text/plain", b"Salary reviews"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // a team's store is read by its members' keys, changed only by its creator
    let team = call(
        &s.gw,
        Method::POST,
        "/team/new",
        MASTER_KEY,
        json!({"team_alias": "docs"}),
    )
    .await
    .json();
    let team_id = team["team_id"].as_str().unwrap();
    let a = key(&s.gw, json!({"team_id": team_id})).await;
    let b = key(&s.gw, json!({"team_id": team_id})).await;
    let r = call(
        &s.gw,
        Method::POST,
        "/v1/vector_stores",
        &a,
        json!({"name": "team docs", "embedding_model": "emb"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tvs = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            &s.gw,
            Method::GET,
            &format!("/v1/vector_stores/{tvs}"),
            &b,
            Value::Null
        )
        .await
        .status,
        200
    );
    call(
        &s.gw,
        Method::DELETE,
        &format!("/v1/vector_stores/{tvs}"),
        &b,
        Value::Null,
    )
    .await
    .assert_error(403);
    let r = call(
        &s.gw,
        Method::DELETE,
        &format!("/v1/vector_stores/{tvs}"),
        &a,
        Value::Null,
    )
    .await;
    assert_eq!(r.json()["deleted"], true, "{}", r.text());
    // the admin sees everything
    let listed = call(
        &s.gw,
        Method::GET,
        "/v1/vector_stores",
        MASTER_KEY,
        Value::Null,
    )
    .await
    .json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
}

/// A store ingested through instance A is searched through instance B; a file deleted on A
/// is gone from B's answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_keep_their_indexes_in_step() {
    let db = crate::common::db::TestDb::create().await;
    let (up, _held) = provider().await;
    let redis =
        std::env::var("TIANJI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let yaml = format!(
        "{}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\nrouter_settings:\n  redis_url: \"{redis}\"\n",
        models(&up.base()),
        db.url
    );
    let a = TestGateway::start(&yaml).await;
    let b = TestGateway::start(&yaml).await;
    let r = ingest_upload(&a, MASTER_KEY, json!({"embedding": {"model": "emb"}, "chunking_strategy": {"chunk_size": 120, "chunk_overlap": 0}}),
        ("handbook.txt", "text/plain", HANDBOOK.as_bytes())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let vs = r.json()["vector_store_id"].as_str().unwrap().to_string();
    // B loads the store on first use
    let r = search(&b, MASTER_KEY, &vs, "password security").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["data"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("password")
    );
    // a second file on A reaches B's loaded index
    let opts = json!({"vector_store": {"vector_store_id": vs}});
    let r = ingest_upload(
        &a,
        MASTER_KEY,
        opts,
        (
            "laptops.txt",
            "text/plain",
            b"Every laptop is encrypted; laptop loans last a year.",
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let laptops = r.json()["file_id"].as_str().unwrap().to_string();
    let seen = eventually_async(Duration::from_secs(10), || async {
        let r = search(&b, MASTER_KEY, &vs, "laptop").await;
        r.json()["data"][0]["file_id"] == laptops.as_str()
    })
    .await;
    assert!(seen, "instance B never found the new file");
    // deleted on A: gone from B
    let r = call(
        &a,
        Method::DELETE,
        &format!("/v1/vector_stores/{vs}/files/{laptops}"),
        MASTER_KEY,
        Value::Null,
    )
    .await;
    assert_eq!(r.json()["deleted"], true, "{}", r.text());
    let gone = eventually_async(Duration::from_secs(10), || async {
        let r = search(&b, MASTER_KEY, &vs, "laptop").await;
        r.json()["data"]
            .as_array()
            .is_some_and(|d| d.iter().all(|h| h["file_id"] != laptops.as_str()))
    })
    .await;
    assert!(gone, "instance B still answers with the deleted file");
}
