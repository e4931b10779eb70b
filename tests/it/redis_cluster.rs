//! Redis Cluster and Sentinel, on real `redis-server` processes started by the tests: limits
//! exact across two instances on a 3-primary cluster, invalidation heard through the cluster,
//! the response cache on it, a primary failover (cluster and Sentinel) after which limits
//! hold again.

use std::time::Duration;

use serde_json::{Value, json};

use super::limits::{chat_at, new_key};
use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::redis_cluster::{RedisCluster, RedisSentinel, ask};
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async};

fn yaml(up: &MockUpstream, db: &TestDb, redis: &str) -> String {
    format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\nrouter_settings:\n{redis}tianji_settings:\n  cache: true\n  cache_params: {{type: redis}}\n",
        b = up.base(),
        u = db.url
    )
}

fn body() -> Value {
    json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "mock_response": "ok"})
}

/// `n` requests spread over `urls` at once; how many were answered 200 (the rest must be 429).
async fn spread(urls: &[String], key: &str, n: usize) -> usize {
    let b = body();
    let rs: Vec<Resp> =
        futures_util::future::join_all((0..n).map(|i| chat_at(&urls[i % urls.len()], key, &b)))
            .await;
    assert!(
        rs.iter().all(|r| r.status == 200 || r.status == 429),
        "{:?}",
        rs.iter().map(|r| r.status.as_u16()).collect::<Vec<_>>()
    );
    rs.iter().filter(|r| r.status == 200).count()
}

async fn mode(gw: &TestGateway) -> String {
    gw.get("/health/readiness").await.json()["rate_limits"]["mode"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn limits_are_exact_across_two_instances_on_a_cluster_and_hold_after_a_failover() {
    let mut cluster = RedisCluster::start(3).await;
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let config = yaml(&up, &db, &cluster.startup_nodes_yaml());
    let a = TestGateway::start(&config).await;
    let b = TestGateway::start(&config).await;
    let urls = [a.url("/v1/chat/completions"), b.url("/v1/chat/completions")];
    let r = a.get("/health/readiness").await.json();
    assert_eq!(r["redis"], "connected", "{r}");

    // rpm 10, 30 requests over both instances: exactly 10
    let key = new_key(&a, json!({"rpm_limit": 10})).await;
    assert_eq!(spread(&urls, &key, 30).await, 10);
    assert_eq!(mode(&a).await, "redis");

    // the limit's counters live in the cluster, in the one slot of `{rl}`
    let holder = cluster.primary_of("tianji:{rl}:v2:x").await;
    let keys = ask(holder, &["DBSIZE"]).await.unwrap();
    assert_ne!(keys, "0", "no key on the primary of the limits' slot");

    // a change made through one instance is heard by the other (pub/sub on the cluster)
    let other = new_key(&a, json!({})).await;
    assert_eq!(chat_at(&urls[1], &other, &body()).await.status, 200);
    let r = crate::common::send(
        http::Method::POST,
        &a.url("/key/block"),
        &[("authorization", &format!("Bearer {MASTER_KEY}"))],
        bytes::Bytes::from(json!({"key": other}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let blocked = eventually_async(Duration::from_secs(10), || async {
        chat_at(&urls[1], &other, &body()).await.status == 403
    })
    .await;
    assert!(blocked, "instance b never heard of the block");

    // the response cache stores on the cluster: a's answer is b's hit
    let cached = json!({"model": "gpt", "messages": [{"role": "user", "content": "cache me"}]});
    let k = new_key(&a, json!({})).await;
    assert_eq!(chat_at(&urls[0], &k, &cached).await.status, 200);
    let hit = eventually_async(Duration::from_secs(10), || async {
        chat_at(&urls[1], &k, &cached)
            .await
            .header("x-tianji-cache-hit")
            .is_some_and(|h| h == "True" || h == "true")
    })
    .await;
    assert!(hit, "b never read a's cache entry from the cluster");

    // the primary holding the limits fails; its replica takes over
    cluster.fail_over(holder).await;
    // the instances find the new primary (a call that fails meanwhile counts in memory)
    let back = eventually_async(Duration::from_secs(30), || async {
        let k = new_key(&a, json!({"rpm_limit": 1000})).await;
        spread(&urls, &k, 4).await == 4 && mode(&a).await == "redis" && mode(&b).await == "redis"
    })
    .await;
    assert!(back, "the instances never came back to the cluster");
    let key = new_key(&a, json!({"rpm_limit": 10})).await;
    assert_eq!(
        spread(&urls, &key, 30).await,
        10,
        "the limit after the failover"
    );
}

#[tokio::test]
async fn limits_follow_the_primary_sentinel_names_after_a_failover() {
    let mut s = RedisSentinel::start().await;
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let config = yaml(&up, &db, &s.yaml());
    let a = TestGateway::start(&config).await;
    let b = TestGateway::start(&config).await;
    let urls = [a.url("/v1/chat/completions"), b.url("/v1/chat/completions")];
    let key = new_key(&a, json!({"rpm_limit": 5})).await;
    assert_eq!(spread(&urls, &key, 12).await, 5);
    assert_eq!(mode(&a).await, "redis");

    s.kill_primary();
    let promoted = eventually_async(Duration::from_secs(30), || async {
        s.current_primary().await == Some(s.replica)
    })
    .await;
    assert!(promoted, "the sentinel never promoted the replica");
    let back = eventually_async(Duration::from_secs(30), || async {
        let k = new_key(&a, json!({"rpm_limit": 1000})).await;
        spread(&urls, &k, 4).await == 4 && mode(&a).await == "redis" && mode(&b).await == "redis"
    })
    .await;
    assert!(back, "the instances never reached the new primary");
    let key = new_key(&a, json!({"rpm_limit": 5})).await;
    assert_eq!(
        spread(&urls, &key, 12).await,
        5,
        "the limit after the failover"
    );
    // the counters are on the new primary
    let keys = ask(s.replica, &["DBSIZE"]).await.unwrap();
    assert_ne!(keys, "0");
}
