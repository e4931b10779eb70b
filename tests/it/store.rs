//! The store against a real PostgreSQL: migrations, concurrent startup, readiness, query count.

use bytes::Bytes;

use crate::common::db::TestDb;
use crate::common::{MASTER_KEY, TestGateway, send};
use tianji::store::{Store, StoreOptions};

#[tokio::test]
async fn migrations_apply_once_and_record_their_version() {
    let db = TestDb::create().await;
    let store = Store::connect(&db.url, StoreOptions::default())
        .await
        .unwrap();
    assert!(store.ping().await);
    let c = db.client().await;
    let versions: Vec<String> = c
        .query(
            "SELECT version FROM tianji_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<String> = tianji::store::migrate::MIGRATIONS
        .iter()
        .map(|(v, _)| v.to_string())
        .collect();
    assert_eq!(versions, expected);
    for table in [
        "TianjiLLM_VerificationToken",
        "TianjiLLM_TeamTable",
        "TianjiLLM_UserTable",
        "TianjiLLM_AuditLog",
        "TianjiLLM_DeletedVerificationToken",
    ] {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = $1",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "{table} missing");
    }
    drop(store);
    // a second start applies nothing and keeps the rows
    let _again = Store::connect(&db.url, StoreOptions::default())
        .await
        .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM tianji_schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n as usize, expected.len());
}

#[tokio::test]
async fn instances_starting_together_migrate_safely() {
    let db = TestDb::create().await;
    let starts = (0..4).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move {
            Store::connect(&url, StoreOptions::default())
                .await
                .map(|_| ())
        })
    });
    for s in starts {
        s.await.unwrap().unwrap();
    }
    let n: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM tianji_schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n as usize, tianji::store::migrate::MIGRATIONS.len());
}

#[tokio::test]
async fn queries_are_counted() {
    let db = TestDb::create().await;
    let store = Store::connect(&db.url, StoreOptions::default())
        .await
        .unwrap();
    let before = store.query_count();
    assert!(store.ping().await);
    assert_eq!(store.query_count(), before + 1);
}

#[tokio::test]
async fn readiness_reports_the_database() {
    let db = TestDb::create().await;
    let gw = TestGateway::start(&format!(
        "model_list: []\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n",
        db.url
    ))
    .await;
    let r = send(
        http::Method::GET,
        &gw.url("/health/readiness"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["db"], "connected");
}

#[tokio::test]
async fn an_unreachable_database_at_startup_is_a_clear_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("postgres://postgres@127.0.0.1:{port}/x");
    let e = Store::connect(
        &url,
        StoreOptions {
            timeout: std::time::Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await
    .err()
    .unwrap();
    assert!(
        e.to_string()
            .contains(&format!("PostgreSQL at 127.0.0.1:{port} is unreachable")),
        "{e}"
    );
}
