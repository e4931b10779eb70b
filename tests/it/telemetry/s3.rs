//! The `s3` logging callback against a real S3 server: moto (`moto[server]` from PyPI, in the
//! test venv) started by the test on a free port, buckets made by the test, objects listed and
//! read back (signed GETs): LiteLLM's key layout, one NDJSON line per request, no secret; a key's `logging`
//! entry with its own `callback_vars` writes to its own bucket, a missing bucket counts the
//! batch as failed.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use super::callbacks::{PROVIDER_KEY, chat, gateway, new_key, upstream};
use crate::common::db::TestDb;
use crate::common::{MASTER_KEY, eventually, eventually_async, send};

const WAIT: Duration = Duration::from_secs(20);
const ACCESS_KEY: &str = "AKIATIANJITEST000001";
const SECRET_KEY: &str = "s3-secret-access-key-do-not-log";

/// A moto S3 server, killed when dropped.
struct Moto {
    child: Child,
    base: String,
}

impl Moto {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let py = crate::it::sdk::python();
        let child = Command::new(&py)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {py} -m moto.server (scripts/test installs moto[server] into .venv): {e}"));
        let mut moto = Moto {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let addr = format!("127.0.0.1:{port}");
        let up = eventually_async(Duration::from_secs(60), || async {
            tokio::net::TcpStream::connect(&addr).await.is_ok()
        })
        .await;
        let exited = moto.child.try_wait().ok().flatten();
        assert!(
            up && exited.is_none(),
            "moto did not start ({exited:?}); is moto[server] installed in {py}?"
        );
        moto
    }

    /// A GET signed with the test's credentials (moto refuses anonymous reads of objects).
    async fn get(&self, path: &str) -> crate::common::Resp {
        use tianji::providers::bedrock::sigv4::{Credentials, HttpRequest, sign_s3};
        let uri = format!("{}{path}", self.base);
        let creds = Credentials {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            session_token: None,
        };
        let req = HttpRequest {
            method: "GET",
            uri: &uri,
            headers: &[],
            body: b"",
        };
        let signed = sign_s3(&req, &creds, "us-east-1", std::time::SystemTime::now()).unwrap();
        let headers: Vec<(&str, &str)> = (signed.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        send(Method::GET, &uri, &headers, Bytes::new()).await
    }

    /// CreateBucket (moto takes it unsigned).
    async fn bucket(&self, name: &str) {
        let r = send(
            Method::PUT,
            &format!("{}/{name}", self.base),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }

    /// The keys of a bucket (ListObjectsV2).
    async fn keys(&self, bucket: &str) -> Vec<String> {
        let r = self.get(&format!("/{bucket}?list-type=2")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        text.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect()
    }

    /// Every payload in a bucket, with the key of its object.
    async fn payloads(&self, bucket: &str) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for key in self.keys(bucket).await {
            let r = self.get(&format!("/{bucket}/{key}")).await;
            assert_eq!(
                r.status,
                200,
                "GET {bucket}/{key}: {:?} {}",
                r.headers,
                r.text()
            );
            let text = r.text();
            assert!(text.ends_with('\n'), "NDJSON: {text}");
            for line in text.lines() {
                out.push((
                    key.clone(),
                    serde_json::from_str(line).expect("a JSON line"),
                ));
            }
        }
        out
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn s3_gets_one_payload_per_request_in_litellm_s_key_layout() {
    let moto = Moto::start().await;
    moto.bucket("tianji-logs").await;
    moto.bucket("team-logs").await;
    let db = TestDb::create().await;
    let up = upstream().await;
    let tianji = format!(
        "  callbacks: [s3]\n  s3_callback_params:\n    s3_bucket_name: tianji-logs\n    s3_region_name: eu-west-1\n    s3_endpoint_url: \"{}\"\n    s3_aws_access_key_id: os.environ/TEST_S3_ACCESS\n    s3_aws_secret_access_key: os.environ/TEST_S3_SECRET\n    s3_path: gateway/logs",
        moto.base
    );
    let env = format!("  TEST_S3_ACCESS: {ACCESS_KEY}\n  TEST_S3_SECRET: {SECRET_KEY}");
    let gw = gateway(&db, &up, &tianji, &env).await;
    let key = new_key(&gw, json!({"key_alias": "s3-key"})).await;
    // a key logging to its own bucket too (its callback_vars; credentials from the environment)
    let vars = json!({
        "s3_bucket_name": "team-logs",
        "s3_endpoint_url": moto.base,
        "s3_path": "keys",
        "s3_aws_access_key_id": ACCESS_KEY,
        "s3_aws_secret_access_key": "os.environ/TEST_S3_SECRET",
    });
    let own = new_key(
        &gw,
        json!({"metadata": {"logging": [{"callback_name": "s3", "callback_type": "success", "callback_vars": vars}]}}),
    )
    .await;

    let mut ids = BTreeSet::new();
    for (k, content) in [(&key, "one"), (&key, "two"), (&key, "fail"), (&own, "mine")] {
        let r = chat(&gw, k, content).await;
        assert_eq!(
            r.status,
            if content == "fail" { 500 } else { 200 },
            "{}",
            r.text()
        );
        ids.insert(r.header("x-tianji-call-id").unwrap().to_string());
    }
    let n = ids.len();
    let stored = eventually_async(WAIT, || async {
        moto.payloads("tianji-logs").await.len() >= n
    })
    .await;
    let all = moto.payloads("tianji-logs").await;
    assert!(stored, "{all:#?}");
    assert_eq!(all.len(), ids.len(), "one payload per request");
    let got: BTreeSet<String> = all
        .iter()
        .map(|(_, p)| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ids);
    for (k, p) in &all {
        // {s3_path}/{YYYY-MM-DD}/time-{HH-MM-SS-ffffff}_{id}.json, the batch's first request
        let parts: Vec<&str> = k.split('/').collect();
        assert_eq!(parts.len(), 4, "{k}");
        assert_eq!(&parts[..2], ["gateway", "logs"], "{k}");
        let file = parts[3];
        assert!(file.starts_with("time-") && file.ends_with(".json"), "{k}");
        let first = file.trim_end_matches(".json").rsplit_once('_').unwrap().1;
        assert!(ids.contains(first), "{k} names a request of the batch");
        // the date and time of the batch's first request
        let start = (all.iter())
            .find(|(_, p)| p["id"] == first)
            .map(|(_, p)| p["startTime"].as_f64().unwrap())
            .unwrap();
        let utc = tianji::util::clock::fmt_utc(start);
        let (day, time) = utc.split_once(' ').unwrap();
        assert_eq!(parts[2], day, "{k}");
        let stamp = format!("time-{}-", time.replace(':', "-"));
        assert!(file.starts_with(&stamp), "{k} vs {stamp}");
        assert_eq!(p["model_group"], "gpt");
        assert_eq!(p["model"], "gpt-4o");
        assert_eq!(p["custom_llm_provider"], "openai");
    }
    let ok = all
        .iter()
        .map(|(_, p)| p)
        .find(|p| p["messages"][0]["content"] == "one")
        .unwrap();
    assert_eq!(ok["status"], "success");
    assert!(ok["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(ok["metadata"]["user_api_key_alias"], "s3-key");
    let failed = all.iter().filter(|(_, p)| p["status"] == "failure").count();
    assert_eq!(failed, 1);

    // the key's own bucket got its request only
    let stored = eventually_async(WAIT, || async {
        !moto.payloads("team-logs").await.is_empty()
    })
    .await;
    assert!(stored);
    let team = moto.payloads("team-logs").await;
    assert_eq!(team.len(), 1, "{team:#?}");
    assert!(team[0].0.starts_with("keys/"), "{}", team[0].0);
    assert_eq!(team[0].1["messages"][0]["content"], "mine");

    // no secret in any object
    let raw_keys = [key.trim_start_matches("sk-"), own.trim_start_matches("sk-")];
    for (_, p) in all.iter().chain(team.iter()) {
        let text = p.to_string();
        for s in [
            PROVIDER_KEY,
            SECRET_KEY,
            MASTER_KEY,
            raw_keys[0],
            raw_keys[1],
        ] {
            assert!(!text.contains(s), "the secret {s} in {text}");
        }
    }
    let state = gw.gw.state().clone();
    assert_eq!(state.callbacks.load().totals().2, 0, "no batch failed");

    // a bucket that does not exist: the batch fails (moto answers 404) and is counted
    let missing = json!({
        "s3_bucket_name": "no-such-bucket",
        "s3_endpoint_url": moto.base,
        "s3_aws_access_key_id": ACCESS_KEY,
        "s3_aws_secret_access_key": "os.environ/TEST_S3_SECRET",
    });
    let lost = new_key(
        &gw,
        json!({"metadata": {"logging": [{"callback_name": "s3", "callback_vars": missing}]}}),
    )
    .await;
    assert_eq!(chat(&gw, &lost, "lost").await.status, 200);
    assert!(eventually(WAIT, || state.callbacks.load().totals().2 == 1).await);
}
