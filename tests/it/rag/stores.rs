//! The vector stores API: the `openai` SDK against the gateway's own stores, and stores hosted
//! by an OpenAI deployment (forwarded with its credentials, ids the gateway's).

use http::Method;
use serde_json::{Value, json};

use super::*;
use crate::common::MASTER_KEY;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_manages_the_gateways_own_stores() {
    let s = setup("").await;
    let k = key(&s.gw, json!({})).await;
    let out = crate::it::sdk::run_python_script(
        "vector_stores_sdk.py",
        &s.gw.url(""),
        &k,
        &["oai", "emb"],
    )
    .await;
    let made: Value = out
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the script's JSON line");
    let vs = made["vector_store_id"].as_str().unwrap();
    // the files were read back from the deployment holding them, with its key
    let reqs = s.up.requests();
    let reads: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.ends_with("/content"))
        .collect();
    assert_eq!(reads.len(), 2, "each file read once");
    assert!(
        reads
            .iter()
            .all(|r| r.headers["authorization"] == "Bearer sk-up")
    );
    // the store is gone with its files and chunks
    for table in [
        "TianjiLLM_ManagedVectorStoreTable",
        "TianjiLLM_VectorStoreFileTable",
        "TianjiLLM_VectorStoreChunkTable",
    ] {
        let col = if table == "TianjiLLM_ManagedVectorStoreTable" {
            "unified_resource_id"
        } else {
            "vector_store_id"
        };
        let n = count(
            &s.db,
            &format!("SELECT count(*) FROM \"{table}\" WHERE {col} = '{vs}'"),
        )
        .await;
        assert_eq!(n, 0, "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_stores_are_forwarded_to_their_deployment() {
    let s = setup("").await;
    let owner = key(&s.gw, json!({})).await;
    // a file on the deployment, then a store there holding it
    let (ct, body) = form(
        &[("purpose", "assistants")],
        Some(("notes.txt", "text/plain", b"laptop notes")),
    );
    let r = crate::common::send(
        Method::POST,
        &s.gw.url("/v1/files"),
        &[
            ("authorization", &bearer(&owner)),
            ("content-type", &ct),
            ("x-tianji-model", "oai"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let file = r.json()["id"].as_str().unwrap().to_string();
    let r = call(&s.gw, Method::POST, "/v1/vector_stores", &owner,
        json!({"name": "hosted", "custom_llm_provider": "openai", "model": "oai", "file_ids": [file]})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let made = r.json();
    let vs = made["id"].as_str().unwrap().to_string();
    assert!(vs.starts_with("vs_") && !vs.starts_with("vs_up"), "{made}");
    let sent = s.up.last();
    assert_eq!(sent.path, "/v1/vector_stores");
    assert_eq!(sent.headers["authorization"], "Bearer sk-up");
    let provider_files = sent.json()["file_ids"].clone();
    assert!(
        provider_files[0].as_str().unwrap().starts_with("file-up"),
        "{provider_files}"
    );
    assert!(sent.json().get("custom_llm_provider").is_none());

    // search goes to the provider's store; the answer carries the gateway's file id
    let r = call(
        &s.gw,
        Method::POST,
        &format!("/v1/vector_stores/{vs}/search"),
        &owner,
        json!({"query": "laptop"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let hit = &r.json()["data"][0];
    assert_eq!(hit["file_id"], file.as_str(), "{hit}");
    assert!(s.up.last().path.starts_with("/v1/vector_stores/vs_up"));

    // /v1/rag/query retrieves from it too
    let q = json!({"model": "chat", "messages": [{"role": "user", "content": "laptops?"}],
        "retrieval_config": {"vector_store_id": vs}});
    let r = call(&s.gw, Method::POST, "/v1/rag/query", &owner, q).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("Hosted stores keep laptop policies")
    );

    // another key cannot reach it
    let other = key(&s.gw, json!({})).await;
    call(
        &s.gw,
        Method::GET,
        &format!("/v1/vector_stores/{vs}"),
        &other,
        Value::Null,
    )
    .await
    .assert_error(404);
    // listed to its owner, deleted on the provider and here
    let listed = call(&s.gw, Method::GET, "/v1/vector_stores", &owner, Value::Null)
        .await
        .json();
    assert_eq!(listed["data"][0]["id"], vs.as_str(), "{listed}");
    let r = call(
        &s.gw,
        Method::DELETE,
        &format!("/v1/vector_stores/{vs}"),
        &owner,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], vs.as_str());
    assert!(s.held.lock().stores.is_empty());
    call(
        &s.gw,
        Method::GET,
        &format!("/v1/vector_stores/{vs}"),
        &owner,
        Value::Null,
    )
    .await
    .assert_error(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_creation_needs_an_embedding_model() {
    let s = setup("").await;
    let r = call(
        &s.gw,
        Method::POST,
        "/v1/vector_stores",
        MASTER_KEY,
        json!({"name": "x"}),
    )
    .await;
    refused(&r, 400, "rag_settings.embedding_model");
    let r = call(
        &s.gw,
        Method::POST,
        "/v1/vector_stores",
        MASTER_KEY,
        json!({"name": "x", "embedding_model": "nope"}),
    )
    .await;
    r.assert_error(400);
    let r = call(
        &s.gw,
        Method::POST,
        "/v1/vector_stores",
        MASTER_KEY,
        json!({"custom_llm_provider": "bedrock"}),
    )
    .await;
    r.assert_error(400);
    // the config's model is the default
    let s = setup("rag_settings:\n  embedding_model: emb\n").await;
    let r = call(
        &s.gw,
        Method::POST,
        "/v1/vector_stores",
        MASTER_KEY,
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["file_counts"]["total"], 0);
}

/// `/v1/rag/ingest` naming `custom_llm_provider: openai`: the document is uploaded to the
/// deployment's files and attached to a store made there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_into_a_hosted_store() {
    let s = setup("").await;
    let k = key(&s.gw, json!({})).await;
    let opts = json!({"name": "hosted docs", "vector_store": {"custom_llm_provider": "openai"}})
        .to_string();
    let (ct, body) = form(
        &[("ingest_options", &opts)],
        Some(("laptops.txt", "text/plain", b"Every laptop is encrypted.")),
    );
    let r = crate::common::send(
        Method::POST,
        &s.gw.url("/v1/rag/ingest"),
        &[
            ("authorization", &bearer(&k)),
            ("content-type", &ct),
            ("x-tianji-model", "oai"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let made = r.json();
    assert_eq!(made["status"], "completed", "{made}");
    let vs = made["vector_store_id"].as_str().unwrap().to_string();
    let file = made["file_id"].as_str().unwrap().to_string();
    assert!(vs.starts_with("vs_") && !vs.starts_with("vs_up"));
    {
        let held = s.held.lock();
        assert_eq!(held.files.len(), 1);
        let (name, bytes) = held.files.values().next().unwrap();
        assert_eq!(
            (name.as_str(), &bytes[..]),
            ("laptops.txt", &b"Every laptop is encrypted."[..])
        );
        assert_eq!(held.stores.len(), 1);
    }
    let r = call(
        &s.gw,
        Method::POST,
        &format!("/v1/vector_stores/{vs}/search"),
        &k,
        json!({"query": "laptop"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["file_id"], file.as_str());
    // no embedding call: the provider embeds
    assert!(
        s.up.requests()
            .iter()
            .all(|r| !r.path.ends_with("/embeddings"))
    );
}

/// `expires_after` holds: an expired store is shown (`status: expired`) and deleted, but not
/// searched or written; a search moves a live store's `last_active_at` on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_stores_are_shown_but_not_used() {
    let s = setup("").await;
    let opts =
        |vs: &str| json!({"embedding": {"model": "emb"}, "vector_store": {"vector_store_id": vs}});
    let mut ids = Vec::new();
    for days in [1, 7] {
        let r = call(
            &s.gw,
            Method::POST,
            "/v1/vector_stores",
            MASTER_KEY,
            json!({"name": format!("ttl-{days}"), "embedding_model": "emb",
                   "expires_after": {"anchor": "last_active_at", "days": days}}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let vs = r.json()["id"].as_str().unwrap().to_string();
        let r = ingest_upload(
            &s.gw,
            MASTER_KEY,
            opts(&vs),
            ("handbook.txt", "text/plain", HANDBOOK.as_bytes()),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(search(&s.gw, MASTER_KEY, &vs, "vacation").await.status, 200);
        ids.push(vs);
    }
    // both stores last used two days ago
    let db = s.db.client().await;
    db.execute(
        "UPDATE \"TianjiLLM_ManagedVectorStoreTable\" SET created_at = now() - interval '2 days', updated_at = now() - interval '2 days'",
        &[],
    )
    .await
    .unwrap();
    let (gone, live) = (&ids[0], &ids[1]);
    assert_eq!(shown(&s.gw, gone).await["status"], "expired");
    refused(
        &search(&s.gw, MASTER_KEY, gone, "vacation").await,
        400,
        "has expired",
    );
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        opts(gone),
        ("more.txt", "text/plain", b"more text"),
    )
    .await;
    refused(&r, 400, "has expired");
    let q = json!({"model": "chat", "messages": [{"role": "user", "content": "vacation?"}],
        "retrieval_config": {"vector_store_id": gone}});
    refused(
        &call(&s.gw, Method::POST, "/v1/rag/query", MASTER_KEY, q).await,
        400,
        "has expired",
    );
    // the live one is searched, and its last_active_at moves to now
    let before = shown(&s.gw, live).await;
    assert_eq!(before["status"], "completed");
    assert_eq!(
        search(&s.gw, MASTER_KEY, live, "vacation").await.status,
        200
    );
    let moved = crate::common::eventually_async(std::time::Duration::from_secs(10), || async {
        let now = shown(&s.gw, live).await;
        now["last_active_at"].as_i64().unwrap()
            > before["last_active_at"].as_i64().unwrap() + 86_400
    })
    .await;
    assert!(moved, "a search did not move last_active_at");
    // the expired one is still deleted
    let r = call(
        &s.gw,
        Method::DELETE,
        &format!("/v1/vector_stores/{gone}"),
        MASTER_KEY,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The store `id` as the master key sees it.
async fn shown(gw: &TestGateway, id: &str) -> Value {
    let r = call(
        gw,
        Method::GET,
        &format!("/v1/vector_stores/{id}"),
        MASTER_KEY,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}
