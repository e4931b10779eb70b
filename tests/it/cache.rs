//! The response cache against the real Redis: hits and misses, TTL expiry, `s-maxage`,
//! `no-cache`, `no-store`, namespaces, two gateways sharing the Redis tier (and deletions
//! reaching both), streams stored and replayed, the semantic cache, tenant scopes, SpendLogs
//! `cache_hit` rows, the admin routes and `allowed_cache_controls` for header controls.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use super::admin_keys::call;
use super::limits::{admin, new_key};
use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, chat_completion, default_reply};
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async, send, stream};

fn shared_redis() -> String {
    std::env::var("TIANJI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A namespace of this test's own, so tests sharing the Redis never see each other's entries.
fn fresh_namespace() -> String {
    format!("t{}", uuid::Uuid::now_v7().simple())
}

/// One chat model at `up`, with the cache configured by `params` (YAML flow map) and
/// `extra` lines.
fn config(up: &MockUpstream, params: &str, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: emb\n    tianji_params: {{model: openai/text-embedding-3-small, api_base: \"{b}\", api_key: sk-up}}\ntianji_settings:\n  cache: true\n  cache_params: {params}\n{extra}",
        b = up.base()
    )
}

/// A gateway whose cache is in front of the shared Redis, under namespace `ns`.
async fn redis_gateway(up: &MockUpstream, ns: &str, extra: &str) -> TestGateway {
    let params = format!(
        "{{type: redis, url: \"{}\", namespace: {ns}}}",
        shared_redis()
    );
    TestGateway::start(&config(up, &params, extra)).await
}

fn ask(content: &str) -> Value {
    json!({"model": "gpt", "messages": [{"role": "user", "content": content}]})
}

async fn post_with(gw_url: &str, key: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {key}");
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(headers);
    send(Method::POST, gw_url, &h, Bytes::from(body.to_string())).await
}

async fn chat(gw: &TestGateway, body: &Value) -> Resp {
    chat_h(gw, body, &[]).await
}

async fn chat_h(gw: &TestGateway, body: &Value, headers: &[(&str, &str)]) -> Resp {
    post_with(&gw.url("/v1/chat/completions"), MASTER_KEY, body, headers).await
}

fn hit(r: &Resp) -> bool {
    assert_eq!(r.status, 200, "{}", r.text());
    match r.header("x-tianji-cache-hit") {
        Some("True") => true,
        Some("False") => false,
        other => panic!("no x-tianji-cache-hit header ({other:?}): {:?}", r.headers),
    }
}

fn key_of(r: &Resp) -> String {
    r.header("x-tianji-cache-key")
        .unwrap_or_default()
        .to_string()
}

async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(shared_redis())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn hits_misses_ttl_and_per_request_controls() {
    let up = MockUpstream::start().await;
    let ns = fresh_namespace();
    let gw = TestGateway::start(&config(
        &up,
        &format!(
            "{{type: redis, url: \"{}\", namespace: {ns}, ttl: 30}}",
            shared_redis()
        ),
        "",
    ))
    .await;

    // miss, then hit: the same bytes, no second upstream call, no cost
    let first = chat(&gw, &ask("hello")).await;
    assert!(!hit(&first));
    let key = key_of(&first);
    assert!(key.starts_with(&format!("tianji:cache:{ns}:")), "{key}");
    let second = chat(&gw, &ask("hello")).await;
    assert!(hit(&second));
    assert_eq!(second.body, first.body);
    assert_eq!(key_of(&second), key);
    assert_eq!(second.header("x-tianji-response-cost"), Some("0"));
    assert_eq!(up.requests().len(), 1);
    // the entry is in Redis, with its TTL
    let mut rc = redis_conn().await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut rc)
        .await
        .unwrap();
    assert!(pttl > 25_000 && pttl <= 30_000, "{pttl}");

    // any parameter that changes the answer is another entry; member order and `user` are not
    let mut hot = ask("hello");
    hot["temperature"] = json!(0.9);
    assert!(!hit(&chat(&gw, &hot).await));
    let reordered =
        json!({"messages": [{"content": "hello", "role": "user"}], "user": "u1", "model": "gpt"});
    assert!(hit(&chat(&gw, &reordered).await));
    assert_eq!(up.requests().len(), 2);

    // no-cache: the provider answers (and the answer is stored again)
    let mut nc = ask("hello");
    nc["cache"] = json!({"no-cache": true});
    assert!(!hit(&chat(&gw, &nc).await));
    assert_eq!(up.requests().len(), 3);
    assert!(!hit(&chat_h(
        &gw,
        &ask("hello"),
        &[("cache-control", "no-cache")]
    )
    .await));
    assert_eq!(up.requests().len(), 4);
    assert!(hit(&chat(&gw, &ask("hello")).await));

    // no-store: answered, never stored
    let mut ns_body = ask("not kept");
    ns_body["cache"] = json!({"no-store": true});
    assert!(!hit(&chat(&gw, &ns_body).await));
    assert!(!hit(&chat_h(
        &gw,
        &ask("not kept"),
        &[("cache-control", "no-store")]
    )
    .await));
    assert!(!hit(&chat(&gw, &ask("not kept")).await));
    assert_eq!(up.requests().len(), 7);
    assert!(hit(&chat(&gw, &ask("not kept")).await));

    // namespace (body or header): separate entries
    let mut spaced = ask("hello");
    spaced["cache"] = json!({"namespace": format!("{ns}-other")});
    let r = chat(&gw, &spaced).await;
    assert!(!hit(&r));
    assert!(key_of(&r).starts_with(&format!("tianji:cache:{ns}-other:")));
    let other_ns = format!("{ns}-other");
    assert!(hit(&chat_h(
        &gw,
        &ask("hello"),
        &[("x-tianji-cache-namespace", &other_ns)]
    )
    .await));
    assert_eq!(up.requests().len(), 8);

    // ttl: gone from both tiers once it has passed
    let mut short = ask("short lived");
    short["cache"] = json!({"ttl": 1});
    assert!(!hit(&chat(&gw, &short).await));
    assert!(hit(&chat(&gw, &ask("short lived")).await));
    // a TTL: the entry's 1 s must really pass
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(!hit(&chat(&gw, &ask("short lived")).await));
    assert_eq!(up.requests().len(), 10);
    let ttl_hdr = chat_h(&gw, &ask("header ttl"), &[("x-tianji-cache-ttl", "1")]).await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(key_of(&ttl_hdr))
        .query_async(&mut rc)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 1000, "{pttl}");

    // s-maxage: an older entry is not accepted (and a fresh answer replaces it); a window: the
    // "hello" entry must really become older than 1 s
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut young = ask("hello");
    young["cache"] = json!({"s-maxage": 1});
    assert!(!hit(&chat(&gw, &young).await));
    young["cache"] = json!({"s-maxage": 60});
    assert!(hit(&chat(&gw, &young).await));
    assert!(hit(&chat_h(
        &gw,
        &ask("hello"),
        &[("cache-control", "s-maxage=60")]
    )
    .await));

    // bad controls are 400s naming the control
    let mut bad = ask("hello");
    bad["cache"] = json!({"ttl": "forever"});
    let v = chat(&gw, &bad).await.assert_error(400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cache.ttl"),
        "{v}"
    );
    chat_h(&gw, &ask("hello"), &[("x-tianji-cache-namespace", "a b")])
        .await
        .assert_error(400);

    // embeddings and text completions are cached too
    let emb = json!({"model": "emb", "input": "some text"});
    let e1 = post_with(&gw.url("/v1/embeddings"), MASTER_KEY, &emb, &[]).await;
    let e2 = post_with(&gw.url("/v1/embeddings"), MASTER_KEY, &emb, &[]).await;
    assert!(!hit(&e1) && hit(&e2));
    assert_eq!(e1.body, e2.body);
    let comp = json!({"model": "gpt", "prompt": "once"});
    let c1 = post_with(&gw.url("/v1/completions"), MASTER_KEY, &comp, &[]).await;
    let c2 = post_with(&gw.url("/v1/completions"), MASTER_KEY, &comp, &[]).await;
    assert!(!hit(&c1) && hit(&c2));

    // a request's own mock_response is never cached
    let mut mocked = ask("hello");
    mocked["mock_response"] = json!("mocked");
    let m = chat(&gw, &mocked).await;
    assert_eq!(m.status, 200);
    assert!(m.header("x-tianji-cache-hit").is_none());
}

#[tokio::test]
async fn default_off_mode_caches_only_on_request() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&config(&up, "{type: local, mode: default_off}", "")).await;
    for _ in 0..2 {
        let r = chat(&gw, &ask("hello")).await;
        assert_eq!(r.status, 200);
        assert!(r.header("x-tianji-cache-hit").is_none());
    }
    let mut opt_in = ask("hello");
    opt_in["cache"] = json!({"use-cache": true});
    assert!(!hit(&chat(&gw, &opt_in).await));
    assert!(hit(&chat(&gw, &opt_in).await));
    assert_eq!(up.requests().len(), 3);
    // the readiness probe names the cache
    let ready = gw.get("/health/readiness").await.json();
    assert_eq!(ready["cache"], "local");
}

#[tokio::test]
async fn two_gateways_share_the_redis_tier_and_deletions_reach_both() {
    let up = MockUpstream::start().await;
    let ns = fresh_namespace();
    let redis = shared_redis();
    // the shared Redis also carries invalidations between the two
    let yaml = config(
        &up,
        &format!("{{type: redis, namespace: {ns}}}"),
        &format!("router_settings:\n  redis_url: \"{redis}\"\n"),
    );
    let a = TestGateway::start(&yaml).await;
    let b = TestGateway::start(&yaml).await;

    let first = chat(&a, &ask("shared")).await;
    assert!(!hit(&first));
    // the write to Redis runs beside the answer: wait for it
    let key = key_of(&first);
    let mut r = redis_conn().await;
    let stored = eventually_async(Duration::from_secs(10), || {
        let (mut r, key) = (r.clone(), key.clone());
        async move {
            let n: i64 = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut r)
                .await
                .unwrap();
            n == 1
        }
    })
    .await;
    assert!(stored, "the entry never reached Redis");
    let from_b = chat(&b, &ask("shared")).await;
    assert!(hit(&from_b));
    assert_eq!(from_b.body, first.body);
    assert_eq!(up.requests().len(), 1);

    // a deletion on a reaches b's in-process tier too
    assert!(hit(&chat(&b, &ask("shared")).await));
    let del = call(
        &a,
        Method::POST,
        "/cache/delete",
        MASTER_KEY,
        json!({"keys": [key]}),
    )
    .await;
    assert_eq!(del.status, 200, "{}", del.text());
    assert_eq!(del.json()["status"], "success");
    let gone = eventually_async(Duration::from_secs(10), || async {
        !hit(&chat_h(&b, &ask("shared"), &[("cache-control", "no-store")]).await)
    })
    .await;
    assert!(
        gone,
        "b still answered from its own tier after the deletion"
    );

    // flushall empties both
    assert!(!hit(&chat(&a, &ask("flushed")).await));
    assert!(hit(&chat(&b, &ask("flushed")).await) || hit(&chat(&b, &ask("flushed")).await));
    let f = call(&b, Method::POST, "/cache/flushall", MASTER_KEY, json!({})).await;
    assert_eq!(f.status, 200, "{}", f.text());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("tianji:cache:{ns}:*"))
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    let flushed = eventually_async(Duration::from_secs(10), || async {
        !hit(&chat_h(&a, &ask("flushed"), &[("cache-control", "no-store")]).await)
    })
    .await;
    assert!(flushed);
}

/// The text of a chat stream's content deltas, and whether it ended with `[DONE]`.
fn streamed_text(sse: &str) -> (String, bool, Option<Value>) {
    let mut text = String::new();
    let mut usage = None;
    let mut done = false;
    for line in sse.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk", "{v}");
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(c);
        }
        if v["usage"].is_object() {
            usage = Some(v["usage"].clone());
        }
    }
    (text, done, usage)
}

#[tokio::test]
async fn streamed_answers_are_stored_and_replayed_as_streams() {
    let up = MockUpstream::start().await;
    let ns = fresh_namespace();
    let gw = redis_gateway(&up, &ns, "").await;
    let url = gw.url("/v1/chat/completions");
    let mut body = ask("stream me");
    body["stream"] = json!(true);
    let s = stream(&url, &body.to_string()).await;
    assert_eq!(s.status, 200);
    let (text, done, _) = streamed_text(&s.text());
    assert_eq!(text, "Hello world");
    assert!(done);
    assert_eq!(up.requests().len(), 1);

    // stored once complete: a plain request gets it whole
    let plain = chat(&gw, &ask("stream me")).await;
    assert!(hit(&plain));
    let v = plain.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello world");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    // replayed as a stream, with usage when asked
    let replay = stream(&url, &body.to_string()).await;
    assert_eq!(replay.status, 200);
    let (text, done, usage) = streamed_text(&replay.text());
    assert_eq!((text.as_str(), done), ("Hello world", true));
    assert!(usage.is_none());
    body["stream_options"] = json!({"include_usage": true});
    let replay = stream(&url, &body.to_string()).await;
    let (text, done, usage) = streamed_text(&replay.text());
    assert_eq!((text.as_str(), done), ("Hello world", true));
    assert!(usage.unwrap()["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(up.requests().len(), 1);

    // a plain answer replays as a stream too
    assert!(!hit(&chat(&gw, &ask("plain first")).await));
    let mut b2 = ask("plain first");
    b2["stream"] = json!(true);
    let (text, done, _) = streamed_text(&stream(&url, &b2.to_string()).await.text());
    assert_eq!((text.as_str(), done), ("Hello from the mock", true));
    assert_eq!(up.requests().len(), 2);

    // a stream that breaks off is not stored
    let broken = MockUpstream::with(Arc::new(|r: &Recorded| {
        if r.text().contains("\"stream\":true") {
            return Reply::Sse {
                events: vec![
                    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half\"},\"finish_reason\":null}]}\n\n".into(),
                ],
                gap: Duration::ZERO,
            };
        }
        default_reply(r)
    }))
    .await;
    let gw2 = TestGateway::start(&config(&broken, "{type: local}", "")).await;
    let mut b3 = ask("cut short");
    b3["stream"] = json!(true);
    let _ = stream(&gw2.url("/v1/chat/completions"), &b3.to_string()).await;
    assert!(!hit(&chat(&gw2, &ask("cut short")).await));
}

/// Embeddings from the words of the input: each word adds 1 to one of 64 dimensions, so
/// prompts with the same words point the same way.
fn word_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; 64];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = w
            .to_lowercase()
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        v[(h % 64) as usize] += 1.0;
    }
    v
}

#[tokio::test]
async fn semantic_cache_hits_above_the_threshold_and_misses_below() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        let body = r.json();
        if r.path.ends_with("/embeddings") {
            let input = body["input"].as_str().unwrap_or_default();
            return Reply::status(
                200,
                json!({"object": "list", "model": "e", "data": [{"object": "embedding", "index": 0,
                    "embedding": word_vector(input)}], "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
            );
        }
        let prompt = body["messages"][0]["content"].as_str().unwrap_or_default();
        Reply::status(200, chat_completion("gpt-4o", &format!("answer to: {prompt}")))
    }))
    .await;
    let ns = fresh_namespace();
    let semantic = format!(
        "{{type: redis-semantic, url: \"{}\", namespace: {ns}, similarity_threshold: 0.9, embedding_model: emb}}",
        shared_redis()
    );
    let gw = TestGateway::start(&config(&up, &semantic, "")).await;
    let chats = || {
        up.requests()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .count()
    };

    let first = chat(&gw, &ask("What is the capital of France?")).await;
    assert!(!hit(&first));
    assert_eq!(
        first.json()["choices"][0]["message"]["content"],
        "answer to: What is the capital of France?"
    );
    // same words, other spelling and punctuation: cosine 1 >= 0.9
    let close = chat(&gw, &ask("what is the capital of france")).await;
    assert!(hit(&close));
    assert_eq!(close.body, first.body);
    assert_eq!(key_of(&close), key_of(&first));
    assert_eq!(chats(), 1);
    // one word more of seven: cosine 0.93, still a hit
    assert!(hit(
        &chat(&gw, &ask("what is the capital of france today")).await
    ));
    // other words: far below the threshold
    let far = chat(&gw, &ask("how do I bake sourdough bread")).await;
    assert!(!hit(&far));
    assert_eq!(
        far.json()["choices"][0]["message"]["content"],
        "answer to: how do I bake sourdough bread"
    );
    assert_eq!(chats(), 2);
    // other parameters are another partition, even for the same words
    let mut hot = ask("what is the capital of france");
    hot["temperature"] = json!(1.5);
    assert!(!hit(&chat(&gw, &hot).await));
    assert_eq!(chats(), 3);
    // a prompt with an image is only ever cached exactly: its text alone matches nothing
    let img = json!({"model": "gpt", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is the capital of France?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]});
    assert!(!hit(&chat(&gw, &img).await));
    assert!(hit(&chat(&gw, &img).await));
    assert_eq!(chats(), 4);

    // a second gateway on the same Redis finds the vectors there, once the first one's writes
    // (which run beside its answers) have landed: the vector in its partition, the answer
    let key = key_of(&first);
    let partitions = format!("tianji:cache:{ns}:semantic:*");
    let rc = redis_conn().await;
    let landed = eventually_async(Duration::from_secs(10), || {
        let (mut rc, key, partitions) = (rc.clone(), key.clone(), partitions.clone());
        async move {
            let names: Vec<String> = redis::cmd("KEYS")
                .arg(&partitions)
                .query_async(&mut rc)
                .await
                .unwrap();
            let mut indexed = false;
            for name in names {
                let there: bool = redis::cmd("HEXISTS")
                    .arg(&name)
                    .arg(&key)
                    .query_async(&mut rc)
                    .await
                    .unwrap();
                indexed |= there;
            }
            let stored: bool = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut rc)
                .await
                .unwrap();
            indexed && stored
        }
    })
    .await;
    assert!(
        landed,
        "the first answer and its vector never reached Redis"
    );
    let gw2 = TestGateway::start(&config(&up, &semantic, "")).await;
    assert!(hit(&chat(&gw2, &ask("What is the capital of FRANCE")).await));
    assert_eq!(chats(), 4);
}

#[tokio::test]
async fn teams_do_not_share_entries_and_hits_are_logged_at_no_cost() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let ns = fresh_namespace();
    let db_settings = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n  proxy_batch_write_at: 0.1\n",
        db.url
    );
    let gw = redis_gateway(&up, &ns, &db_settings).await;
    admin(&gw, "/team/new", json!({"team_id": "t1"})).await;
    admin(&gw, "/team/new", json!({"team_id": "t2"})).await;
    let a1 = new_key(&gw, json!({"team_id": "t1"})).await;
    let a2 = new_key(&gw, json!({"team_id": "t1"})).await;
    let b1 = new_key(&gw, json!({"team_id": "t2"})).await;
    let lone1 = new_key(&gw, json!({})).await;
    let lone2 = new_key(&gw, json!({})).await;
    let url = gw.url("/v1/chat/completions");
    let q = ask("team question");

    assert!(!hit(&post_with(&url, &a1, &q, &[]).await));
    // the same team shares
    assert!(hit(&post_with(&url, &a2, &q, &[]).await));
    // another team, and keys without a team, do not
    assert!(!hit(&post_with(&url, &b1, &q, &[]).await));
    assert!(!hit(&post_with(&url, &lone1, &q, &[]).await));
    assert!(!hit(&post_with(&url, &lone2, &q, &[]).await));
    assert!(hit(&post_with(&url, &lone2, &q, &[]).await));
    assert_eq!(up.requests().len(), 4);

    // SpendLogs: hits say so, carry the tokens of the original call and cost nothing; the
    // key's spend only grew by the calls made
    let c = db.client().await;
    let read = || async {
        c.query(
            "SELECT \"cache_hit\", \"cache_key\", \"spend\", \"total_tokens\" FROM \"TianjiLLM_SpendLogs\" ORDER BY \"startTime\"",
            &[],
        )
        .await
        .unwrap()
    };
    let logged = eventually_async(Duration::from_secs(10), || async {
        read().await.len() == 6
    })
    .await;
    let rows = read().await;
    assert!(logged, "{} rows", rows.len());
    let hits: Vec<&tokio_postgres::Row> = rows
        .iter()
        .filter(|r| r.get::<_, String>(0) == "True")
        .collect();
    assert_eq!(hits.len(), 2);
    for h in &hits {
        assert!(
            h.get::<_, String>(1)
                .starts_with(&format!("tianji:cache:{ns}:"))
        );
        assert_eq!(h.get::<_, f64>(2), 0.0);
        assert_eq!(h.get::<_, i32>(3), 12);
    }
    let misses = rows.iter().filter(|r| r.get::<_, String>(0) == "False");
    assert!(misses.clone().all(|r| r.get::<_, f64>(2) > 0.0));

    // /global/activity/cache_hits counts them
    let today = utc_today();
    let r = call(
        &gw,
        Method::GET,
        &format!("/global/activity/cache_hits?start_date={today}&end_date={today}"),
        MASTER_KEY,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["totals"]["cache_hits"], 2, "{v}");
    assert_eq!(v["totals"]["api_requests"], 4, "{v}");

    // a key may only set the controls it is allowed, headers included
    let limited = new_key(
        &gw,
        json!({"team_id": "t1", "allowed_cache_controls": ["no-cache"]}),
    )
    .await;
    assert!(!hit(&post_with(
        &url,
        &limited,
        &q,
        &[("cache-control", "no-cache")]
    )
    .await));
    let v = post_with(&url, &limited, &q, &[("cache-control", "no-store")])
        .await
        .assert_error(403);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Not allowed to set no-store as a cache control"),
        "{v}"
    );
    post_with(&url, &limited, &q, &[("x-tianji-cache-ttl", "5")])
        .await
        .assert_error(403);

    // the cache admin routes are for admins only
    for (m, path) in [
        (Method::GET, "/cache/ping"),
        (Method::POST, "/cache/delete"),
        (Method::POST, "/cache/flushall"),
        (Method::GET, "/cache/redis/info"),
    ] {
        let r = call(&gw, m, path, &a1, json!({"keys": []})).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
    }
}

/// Today's date in UTC (YYYY-MM-DD).
fn utc_today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    tianji::util::clock::fmt_utc(now)[..10].to_string()
}

#[tokio::test]
async fn cache_admin_routes() {
    let up = MockUpstream::start().await;
    let ns = fresh_namespace();
    let gw = redis_gateway(&up, &ns, "").await;
    let ping = gw.get("/cache/ping").await;
    assert_eq!(ping.status, 200, "{}", ping.text());
    let v = ping.json();
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["cache_type"], "redis");
    assert_eq!(v["cache_params"]["namespace"], ns.as_str());
    assert!(!ping.text().contains("redis://"), "no URL in the answer");

    let info = gw.get("/cache/redis/info").await;
    assert_eq!(info.status, 200, "{}", info.text());
    let v = info.json();
    assert!(v["info"]["redis_version"].is_string(), "{v}");
    assert!(v["num_clients"].as_u64().unwrap() >= 1);

    // only cache keys may be deleted
    let r = call(
        &gw,
        Method::POST,
        "/cache/delete",
        MASTER_KEY,
        json!({"keys": ["tianji:limits:x"]}),
    )
    .await;
    r.assert_error(400);
    let r = call(
        &gw,
        Method::POST,
        "/cache/delete",
        MASTER_KEY,
        json!({"keys": "x"}),
    )
    .await;
    r.assert_error(400);
    let first = chat(&gw, &ask("to delete")).await;
    assert!(!hit(&first));
    assert!(hit(&chat(&gw, &ask("to delete")).await));
    let r = call(
        &gw,
        Method::POST,
        "/cache/delete",
        MASTER_KEY,
        json!({"keys": [key_of(&first)]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!hit(&chat(&gw, &ask("to delete")).await));

    // a local cache has no Redis to describe; no cache at all is a 503 everywhere
    let local = TestGateway::start(&config(&up, "{type: local}", "")).await;
    assert_eq!(local.get("/cache/ping").await.json()["cache_type"], "local");
    local.get("/cache/redis/info").await.assert_error(503);
    let none = TestGateway::start(&format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{}\", api_key: sk-up}}\n",
        up.base()
    ))
    .await;
    let v = none.get("/cache/ping").await.assert_error(503);
    assert_eq!(v["error"]["type"], "cache_ping_error");
    let r = none
        .post("/v1/chat/completions", &ask("x").to_string())
        .await;
    assert!(r.header("x-tianji-cache-hit").is_none());
}
