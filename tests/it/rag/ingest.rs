//! `/v1/rag/ingest` and `/v1/rag/query`: uploads (text, PDF, HTML), URLs (allow-listed or
//! refused), the answer built on the right chunk, rerank, streaming, spend rows, and bad input
//! leaving nothing behind.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::*;
use crate::common::{MASTER_KEY, eventually_async};

fn chunked() -> Value {
    json!({"embedding": {"model": "emb"}, "chunking_strategy": {"chunk_size": 80, "chunk_overlap": 0}})
}

/// US9 scenarios 1, 2 and 4: an upload chunked, embedded and stored (the store saved in
/// `TianjiLLM_ManagedVectorStoreTable`); a query answered from the chunk that talks about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_document_is_ingested_and_answers_the_query() {
    let s = setup("").await;
    let k = key(&s.gw, json!({})).await;
    let r = ingest_upload(
        &s.gw,
        &k,
        chunked(),
        ("handbook.txt", "text/plain", HANDBOOK.as_bytes()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let made = r.json();
    assert_eq!(made["status"], "completed", "{made}");
    let vs = made["vector_store_id"].as_str().unwrap().to_string();
    assert!(made["file_id"].as_str().unwrap().starts_with("file-"));
    // scenario 4: the store is in the table, with its chunks
    let stores = count(&s.db, &format!("SELECT count(*) FROM \"TianjiLLM_ManagedVectorStoreTable\" WHERE unified_resource_id = '{vs}'")).await;
    assert_eq!(stores, 1);
    let chunks = count(&s.db, &format!("SELECT count(*) FROM \"TianjiLLM_VectorStoreChunkTable\" WHERE vector_store_id = '{vs}'")).await;
    assert!(chunks >= 4, "{chunks} chunks");

    // scenario 2: the question about vacations gets the vacation chunk first
    let q = json!({"model": "chat", "messages": [{"role": "user", "content": "How many vacation days do I get?"}],
        "retrieval_config": {"vector_store_id": vs, "top_k": 2}});
    let r = call(&s.gw, Method::POST, "/v1/rag/query", &k, q).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let a = r.json();
    let said = a["choices"][0]["message"]["content"].as_str().unwrap();
    let context = said.split("\n---\n").next().unwrap();
    assert!(context.starts_with("system: "), "{said}");
    assert!(context.contains("[1] handbook.txt"), "{context}");
    let first = context.split("[2]").next().unwrap();
    assert!(
        first.contains("vacation policy grants 30 days"),
        "{context}"
    );
    let results = a["search_results"]["data"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["index"], 1);
    assert!(
        results[0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("vacation")
    );
    assert_eq!(results[0]["vector_store_id"], vs.as_str());

    // the embeddings and the chat are the caller's, with SpendLogs rows
    let token = tianji::auth::token_hex(&k);
    let done = eventually_async(Duration::from_secs(15), || async {
        let n = count(&s.db, &format!("SELECT count(*) FROM \"TianjiLLM_SpendLogs\" WHERE api_key = '{token}' AND call_type = 'aembedding'")).await;
        let c = count(&s.db, &format!("SELECT count(*) FROM \"TianjiLLM_SpendLogs\" WHERE api_key = '{token}' AND call_type = 'acompletion'")).await;
        n >= 2 && c >= 1
    })
    .await;
    assert!(
        done,
        "embedding and chat calls were not booked to the caller"
    );

    // rerank: the salary chunk moves first
    let q = json!({"model": "chat", "messages": [{"role": "user", "content": "vacation or salary?"}],
        "retrieval_config": {"vector_store_id": vs, "top_k": 3},
        "rerank": {"enabled": true, "model": "rerank", "top_n": 1}});
    let r = call(&s.gw, Method::POST, "/v1/rag/query", &k, q).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let a = r.json();
    let results = a["search_results"]["data"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{a}");
    assert!(
        results[0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Salary"),
        "{a}"
    );
    assert!(results[0]["rerank_score"].as_f64().unwrap() > 0.5);

    // streamed: the completion comes as SSE
    let q = json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "expense reports?"}],
        "retrieval_config": {"vector_store_id": vs, "top_k": 1}});
    let r = call(&s.gw, Method::POST, "/v1/rag/query", &k, q).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("data: ") && text.contains("Expense reports are due on Fridays"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
}

/// PDF and HTML uploads go through their extractors; the search endpoint finds their text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdf_and_html_documents_are_extracted() {
    let s = setup("").await;
    let pdf = fixture("handbook.pdf");
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        chunked(),
        ("handbook.pdf", "application/pdf", &pdf),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let vs = r.json()["vector_store_id"].as_str().unwrap().to_string();
    let html = fixture("handbook.html");
    let opts = json!({"embedding": {"model": "emb"}, "vector_store": {"vector_store_id": vs}});
    let r = ingest_upload(&s.gw, MASTER_KEY, opts, ("page.html", "text/html", &html)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["vector_store_id"], vs.as_str());
    for (q, want) in [
        ("vacation days", "30 days"),
        (
            "when are expense reports due",
            "Expense reports are due on Fridays",
        ),
    ] {
        let r = call(
            &s.gw,
            Method::POST,
            &format!("/v1/vector_stores/{vs}/search"),
            MASTER_KEY,
            json!({"query": q, "max_num_results": 1}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let hit = &r.json()["data"][0];
        let text = hit["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(want), "{q}: {text}");
        assert!(
            !text.contains("<script") && !text.contains("function("),
            "{text}"
        );
    }
}

/// A small HTTP server on loopback that serves `body` at any path.
async fn doc_server(body: &'static str) -> std::net::SocketAddr {
    let up = crate::common::mock_upstream::MockUpstream::with(std::sync::Arc::new(move |_r| {
        crate::common::mock_upstream::Reply::Raw {
            status: 200,
            content_type: "text/html; charset=utf-8",
            chunks: vec![bytes::Bytes::from_static(body.as_bytes())],
        }
    }))
    .await;
    let addr = up.addr;
    std::mem::forget(up);
    addr
}

/// US9 scenario 3: a URL ingested when its host is allow-listed, refused otherwise (loopback,
/// and numeric forms of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_are_fetched_only_from_allowed_hosts() {
    let page = "<html><head><script>var x = 1;</script></head><body><nav>Menu</nav>\
        <p>Expense reports are due on Fridays.</p><p>The office closes at five.</p></body></html>";
    let addr = doc_server(page).await;
    let url = format!("http://127.0.0.1:{}/policies/expenses.html", addr.port());
    let ask = |u: &str| json!({"file_url": u, "ingest_options": {"embedding": {"model": "emb"}}});

    let s = setup("").await;
    for u in [
        url.clone(),
        format!("http://localhost:{}/x.html", addr.port()),
        format!("http://2130706433:{}/x.html", addr.port()),
        "http://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let r = call(&s.gw, Method::POST, "/v1/rag/ingest", MASTER_KEY, ask(&u)).await;
        let e = r.assert_error(400);
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains("allowed_url_hosts"), "{u}: {msg}");
    }
    // nothing half-written: no store was left behind
    let n = count(
        &s.db,
        "SELECT count(*) FROM \"TianjiLLM_ManagedVectorStoreTable\"",
    )
    .await;
    assert_eq!(n, 0);

    let s = setup("rag_settings:\n  allowed_url_hosts: [\"127.0.0.1\"]\n").await;
    let r = call(&s.gw, Method::POST, "/v1/rag/ingest", MASTER_KEY, ask(&url)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let vs = r.json()["vector_store_id"].as_str().unwrap().to_string();
    let r = call(
        &s.gw,
        Method::POST,
        &format!("/v1/vector_stores/{vs}/search"),
        MASTER_KEY,
        json!({"query": "expense"}),
    )
    .await;
    let hit = &r.json()["data"][0];
    assert_eq!(hit["filename"], "expenses.html");
    assert!(
        hit["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Expense reports are due on Fridays")
    );
    // the allow-list names hosts: `localhost` is still refused
    let r = call(
        &s.gw,
        Method::POST,
        "/v1/rag/ingest",
        MASTER_KEY,
        ask(&format!("http://localhost:{}/x.html", addr.port())),
    )
    .await;
    r.assert_error(400);
}

/// Bad input: unsupported types (400 listing the formats), empty and corrupt files, an
/// embedding model failing mid-ingest, a dimension change: a clear error, nothing left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_documents_leave_nothing_behind() {
    let s = setup("").await;
    let opts = chunked();
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        opts.clone(),
        (
            "report.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            b"PK\x03\x04junk",
        ),
    )
    .await;
    let e = r.assert_error(400);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(".pdf") && msg.contains(".txt") && msg.contains(".html"),
        "{msg}"
    );
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        opts.clone(),
        ("empty.txt", "text/plain", b"  \n\n "),
    )
    .await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.text());
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        opts.clone(),
        (
            "broken.pdf",
            "application/pdf",
            b"%PDF-1.7\n1 0 obj << /Type /Catalog",
        ),
    )
    .await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.text());
    let long = HANDBOOK.repeat(40);
    let broken = json!({"embedding": {"model": "emb-broken"}, "chunking_strategy": {"chunk_size": 100, "chunk_overlap": 0}});
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        broken,
        ("long.txt", "text/plain", long.as_bytes()),
    )
    .await;
    refused(&r, 500, "embedding backend down");
    for table in [
        "TianjiLLM_ManagedVectorStoreTable",
        "TianjiLLM_VectorStoreFileTable",
        "TianjiLLM_VectorStoreChunkTable",
    ] {
        let n = count(&s.db, &format!("SELECT count(*) FROM \"{table}\"")).await;
        assert_eq!(n, 0, "{table} holds rows");
    }

    // into an existing store: the failed file is marked failed, its chunks gone, the store
    // still answers from what it held
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        chunked(),
        ("handbook.txt", "text/plain", HANDBOOK.as_bytes()),
    )
    .await;
    let vs = r.json()["vector_store_id"].as_str().unwrap().to_string();
    let drift = json!({"embedding": {"model": "emb"}, "vector_store": {"vector_store_id": vs},
        "chunking_strategy": {"chunk_size": 100, "chunk_overlap": 0}});
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        drift,
        ("more.html", "text/html", b"<p>x</p>"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let wide = json!({"embedding": {"model": "emb-wide"}, "vector_store": {"vector_store_id": vs}});
    let r = ingest_upload(&s.gw, MASTER_KEY, wide, ("w.txt", "text/plain", b"salary")).await;
    refused(&r, 400, "embeds with emb");
    let files = call(
        &s.gw,
        Method::GET,
        &format!("/v1/vector_stores/{vs}/files"),
        MASTER_KEY,
        Value::Null,
    )
    .await
    .json();
    let statuses: Vec<&str> = files["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "completed").count(),
        2,
        "{files}"
    );
    let r = call(
        &s.gw,
        Method::POST,
        &format!("/v1/vector_stores/{vs}/search"),
        MASTER_KEY,
        json!({"query": "vacation"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.json()["data"].as_array().unwrap().is_empty());
}

/// The gateway asks for base64 vectors (less than half the bytes of decimals); a model that
/// refuses the parameter is asked again for floats, and for floats only from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_come_as_base64_unless_the_model_refuses_it() {
    let s = setup("").await;
    let q = |vs: &str| {
        json!({"model": "chat", "messages": [{"role": "user", "content": "How many vacation days do I get?"}],
            "retrieval_config": {"vector_store_id": vs, "top_k": 1}})
    };
    for model in ["emb", "emb-floats"] {
        let opts = json!({"embedding": {"model": model}, "chunking_strategy": {"chunk_size": 80, "chunk_overlap": 0}});
        for _ in 0..2 {
            let r = ingest_upload(
                &s.gw,
                MASTER_KEY,
                opts.clone(),
                ("handbook.txt", "text/plain", HANDBOOK.as_bytes()),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.json()["status"], "completed", "{}", r.text());
            let vs = r.json()["vector_store_id"].as_str().unwrap().to_string();
            let r = call(&s.gw, Method::POST, "/v1/rag/query", MASTER_KEY, q(&vs)).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let top = &r.json()["search_results"]["data"][0]["content"][0]["text"];
            assert!(top.as_str().unwrap().contains("vacation"), "{model}: {top}");
        }
    }
    let held = s.held.lock();
    assert!(held.base64_asked >= 4, "{} base64 calls", held.base64_asked);
    assert_eq!(
        held.base64_refused, 1,
        "emb-floats was asked for base64 again"
    );
}

/// A dimension change mid-ingest (the model starts answering longer vectors) fails the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dimension_change_fails_the_file() {
    let s = setup("").await;
    let long = HANDBOOK.repeat(40);
    let opts = json!({"embedding": {"model": "emb-drift"}, "chunking_strategy": {"chunk_size": 100, "chunk_overlap": 0}});
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        opts,
        ("long.txt", "text/plain", long.as_bytes()),
    )
    .await;
    refused(&r, 400, "Dimension mismatch");
    let n = count(
        &s.db,
        "SELECT count(*) FROM \"TianjiLLM_VectorStoreChunkTable\"",
    )
    .await;
    assert_eq!(n, 0);
}

/// A scanned PDF (no text layer): 422 pointing at `ingest_options.ocr.model`; with an OCR model,
/// its pages' text is ingested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanned_pdfs_are_read_through_an_ocr_model() {
    let s = setup("").await;
    let scan = fixture("scanned.pdf");
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        chunked(),
        ("scan.pdf", "application/pdf", &scan),
    )
    .await;
    refused(&r, 422, "ocr.model");
    let opts = json!({"embedding": {"model": "emb"}, "ocr": {"model": "ocr"}});
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        opts,
        ("scan.pdf", "application/pdf", &scan),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let vs = r.json()["vector_store_id"].as_str().unwrap().to_string();
    let r = call(
        &s.gw,
        Method::POST,
        &format!("/v1/vector_stores/{vs}/search"),
        MASTER_KEY,
        json!({"query": "vacation"}),
    )
    .await;
    let text = r.json()["data"][0]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("vacation policy grants 30 days"), "{text}");
    let ocr =
        s.up.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/ocr"))
            .count();
    assert_eq!(ocr, 1);
    // the OCR call's own row, priced per page (one page at mistral-ocr-latest's rate)
    let c = s.db.client().await;
    let q = "SELECT spend FROM \"TianjiLLM_SpendLogs\" WHERE call_type = 'aocr'";
    let priced = crate::common::eventually_async(std::time::Duration::from_secs(10), || async {
        let rows = c.query(q, &[]).await.unwrap();
        rows.len() == 1 && (rows[0].get::<_, f64>(0) - 0.004).abs() < 1e-9
    })
    .await;
    assert!(priced, "{:?}", c.query(q, &[]).await.unwrap());
}

/// A file whose ingestion stopped with its instance (no batch written for 10 minutes) is failed
/// when an instance starts, so it does not stay `in_progress` for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_ingestions_are_failed_at_startup() {
    let s = setup("").await;
    let r = ingest_upload(
        &s.gw,
        MASTER_KEY,
        chunked(),
        ("handbook.txt", "text/plain", HANDBOOK.as_bytes()),
    )
    .await;
    let vs = r.json()["vector_store_id"].as_str().unwrap().to_string();
    let c = s.db.client().await;
    for (file, age) in [("file-stale", "1 hour"), ("file-busy", "1 second")] {
        c.execute(
            &format!("INSERT INTO \"TianjiLLM_VectorStoreFileTable\" (vector_store_id, file_id, status, updated_at) VALUES ($1, $2, 'in_progress', now() - interval '{age}')"),
            &[&vs, &file],
        )
        .await
        .unwrap();
    }
    let yaml = format!(
        "{}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n",
        models(&s.up.base()),
        s.db.url
    );
    let _again = crate::common::TestGateway::start(&yaml).await;
    let failed = eventually_async(Duration::from_secs(10), || async {
        file_status(&s.db, &vs, "file-stale").await.0 == "failed"
    })
    .await;
    assert!(failed, "the stale file is still in progress");
    assert!(
        file_status(&s.db, &vs, "file-stale")
            .await
            .1
            .unwrap()
            .contains("interrupted")
    );
    assert_eq!(file_status(&s.db, &vs, "file-busy").await.0, "in_progress");
}

async fn file_status(
    db: &crate::common::db::TestDb,
    vs: &str,
    f: &str,
) -> (String, Option<String>) {
    let row = db
        .client()
        .await
        .query_one(
            "SELECT status, last_error::text FROM \"TianjiLLM_VectorStoreFileTable\" WHERE vector_store_id = $1 AND file_id = $2",
            &[&vs, &f],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}
