//! Live configuration reload against the `tianji` binary: SIGHUP, `POST /config/reload` and the
//! file watch put a changed file in force under load with no failed request; a bad file is
//! rejected, the config in force stays, and readiness shows why.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::mock_upstream::MockUpstream;
use crate::common::{GatewayProcess, MASTER_KEY, Resp, eventually_async, send};

fn config(a: &MockUpstream, b: &MockUpstream, version: u32, extra: &str) -> String {
    // version 1: m on A; version 2: m on B and a new group m-new on B, a guardrail
    let models = match version {
        1 => format!(
            "  - model_name: m\n    tianji_params: {{model: openai/x, api_base: \"{}\", api_key: sk-up-secret}}\n",
            a.base()
        ),
        _ => format!(
            "  - model_name: m\n    tianji_params: {{model: openai/x, api_base: \"{b}\", api_key: sk-up-secret}}\n  - model_name: m-new\n    tianji_params: {{model: openai/y, api_base: \"{b}\", api_key: sk-up-secret}}\n",
            b = b.base()
        ),
    };
    let guardrails = if version >= 2 {
        "guardrails:\n  - guardrail_name: words\n    tianji_params: {guardrail: litellm_content_filter, mode: pre_call, default_on: true, blocked_words: [{keyword: forbidden, action: BLOCK}]}\n"
    } else {
        ""
    };
    format!(
        "model_list:\n{models}{guardrails}general_settings:\n  master_key: {MASTER_KEY}\n{extra}"
    )
}

async fn call(gw: &GatewayProcess, method: Method, path: &str, key: &str, body: Value) -> Resp {
    let auth = format!("Bearer {key}");
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    send(method, &gw.url(path), &[("authorization", &auth)], body).await
}

async fn chat(gw: &GatewayProcess, model: &str, text: &str) -> Resp {
    call(
        gw,
        Method::POST,
        "/v1/chat/completions",
        MASTER_KEY,
        json!({"model": model, "messages": [{"role": "user", "content": text}]}),
    )
    .await
}

/// Chat requests on four connections until stopped; counts answers and failures.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<std::sync::Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks = (0..4)
            .map(|_| {
                let (stop, ok, failed, url) =
                    (stop.clone(), ok.clone(), failed.clone(), url.clone());
                tokio::spawn(async move {
                    let body =
                        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
                    let auth = format!("Bearer {MASTER_KEY}");
                    while !stop.load(Ordering::Relaxed) {
                        let r = send(
                            Method::POST,
                            &url,
                            &[("authorization", &auth)],
                            Bytes::from(body.to_string()),
                        )
                        .await;
                        if r.status == 200 {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            failed
                                .lock()
                                .unwrap()
                                .push(format!("{}: {}", r.status, r.text()));
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            tasks,
        }
    }

    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let failed = self.failed.lock().unwrap().clone();
        (self.ok.load(Ordering::Relaxed), failed)
    }
}

async fn readiness(gw: &GatewayProcess) -> Value {
    send(Method::GET, &gw.url("/health/readiness"), &[], Bytes::new())
        .await
        .json()
}

#[tokio::test]
async fn reloads_under_load_without_a_failed_request_and_rejects_a_bad_file() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = GatewayProcess::start(&config(&a, &b, 1, "")).await;
    assert_eq!(chat(&gw, "m", "hi").await.status, 200);
    chat(&gw, "m-new", "hi").await.assert_error(400);
    let load = Load::start(gw.url("/v1/chat/completions"));
    let answered = |n: u64| {
        let ok = load.ok.clone();
        async move {
            eventually_async(Duration::from_secs(20), || {
                let ok = ok.clone();
                async move { ok.load(Ordering::Relaxed) >= n }
            })
            .await
        }
    };
    assert!(answered(20).await, "the load did not start");

    // SIGHUP with a changed file: m moves to B, m-new appears, a guardrail applies
    std::fs::write(gw.config_path(), config(&a, &b, 2, "")).unwrap();
    gw.signal("HUP");
    let moved = eventually_async(Duration::from_secs(20), || async {
        chat(&gw, "m-new", "hi").await.status == 200
    })
    .await;
    assert!(moved, "the reloaded model never answered");
    let on_b = eventually_async(Duration::from_secs(20), || async {
        b.requests().iter().any(|r| r.json()["model"] == "x")
    })
    .await;
    assert!(on_b, "m never reached its new deployment");
    let e = chat(&gw, "m", "this is forbidden").await.assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("forbidden"),
        "{e}"
    );
    let r = readiness(&gw).await;
    assert_eq!(r["config"]["last_reload"]["status"], "reloaded", "{r}");
    assert_eq!(r["config"]["reloads_applied"], 1);
    let changed = r["config"]["last_reload"]["changed"].to_string();
    assert!(
        changed.contains("model_list") && changed.contains("guardrails"),
        "{changed}"
    );

    // a bad file: rejected, the config in force stays, readiness says why
    std::fs::write(gw.config_path(), "model_list:\n  - model_name: broken\n").unwrap();
    gw.signal("HUP");
    let seen = eventually_async(Duration::from_secs(20), || async {
        readiness(&gw).await["config"]["last_reload"]["status"] == "rejected"
    })
    .await;
    assert!(seen, "the bad reload was not reported");
    let r = readiness(&gw).await;
    assert_eq!(r["status"], "healthy");
    let err = r["config"]["last_reload"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("model_list[0]"), "{err}");
    assert_eq!(chat(&gw, "m-new", "hi").await.status, 200);

    // the admin route: the same refusal as a 400
    let e = call(&gw, Method::POST, "/config/reload", MASTER_KEY, Value::Null)
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model_list[0]"),
        "{e}"
    );
    call(
        &gw,
        Method::POST,
        "/config/reload",
        "sk-not-admin",
        Value::Null,
    )
    .await
    .assert_error(401);

    // a good file again through the route; a startup-only change is named, not applied
    std::fs::write(
        gw.config_path(),
        config(&a, &b, 1, "  max_request_size_mb: 5\n"),
    )
    .unwrap();
    let r = call(&gw, Method::POST, "/config/reload", MASTER_KEY, Value::Null).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = r.json();
    assert_eq!(r["status"], "reloaded");
    assert_eq!(
        r["restart_required"],
        json!(["general_settings.max_request_size_mb"]),
        "{r}"
    );
    let gone = eventually_async(Duration::from_secs(5), || async {
        chat(&gw, "m-new", "hi").await.status == 400
    })
    .await;
    assert!(gone, "m-new stayed after it left the file");
    assert_eq!(chat(&gw, "m", "forbidden is fine again").await.status, 200);
    // the same file again changes nothing
    let r = call(&gw, Method::POST, "/config/reload", MASTER_KEY, Value::Null)
        .await
        .json();
    assert_eq!(r["status"], "unchanged", "{r}");

    // the config in force, secrets hidden
    let y = call(&gw, Method::GET, "/config/yaml", MASTER_KEY, Value::Null).await;
    assert_eq!(y.status, 200, "{}", y.text());
    let text = y.text();
    assert!(
        !text.contains("sk-up-secret") && !text.contains(MASTER_KEY),
        "{text}"
    );
    assert_eq!(
        y.json()["config"]["model_list"][0]["tianji_params"]["api_key"],
        "***"
    );

    let before = load.ok.load(Ordering::Relaxed);
    assert!(answered(before + 20).await, "the load stalled");
    let (ok, failed) = load.finish().await;
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the reloads: {:?}",
        failed.len(),
        ok + failed.len() as u64,
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 40, "{ok}");
}

#[tokio::test]
async fn the_file_watch_reloads_a_changed_file() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = GatewayProcess::start(&config(&a, &b, 1, "  watch_config_file: true\n")).await;
    chat(&gw, "m-new", "hi").await.assert_error(400);
    std::fs::write(
        gw.config_path(),
        config(&a, &b, 2, "  watch_config_file: true\n"),
    )
    .unwrap();
    let seen = eventually_async(Duration::from_secs(20), || async {
        chat(&gw, "m-new", "hi").await.status == 200
    })
    .await;
    assert!(seen, "the watched file's change was never put in force");
}
