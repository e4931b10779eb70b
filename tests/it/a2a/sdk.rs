//! The official `a2a-sdk` on both sides: a real agent built with its server classes
//! (`tests/python/a2a_agent.py`) behind the gateway, and its client
//! (`tests/python/a2a_sdk_client.py`) calling through the gateway in both protocol versions
//! (1.0 PascalCase with `A2A-Version: 1.0`, and the 0.3 compat transport): send, stream, task
//! get/list/cancel, subscribe, the extended card, a push-notification config method (list and
//! push configs in 1.0 only). The agent
//! records every request it got: each carried the agent's stored credential, never a caller's
//! key.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::common::db::TestDb;

/// The a2a-sdk agent, each request it got a JSON line in a file; stopped when dropped.
struct SdkAgent {
    port: u16,
    child: Child,
    file: tempfile::NamedTempFile,
}

impl SdkAgent {
    fn start() -> Self {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/a2a_agent.py");
        let mut child = Command::new(crate::it::sdk::python())
            .arg(script)
            .arg(file.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python with a2a-sdk[http-server] (run scripts/test to create .venv)");
        let out = child.stdout.take().expect("stdout");
        // killed on drop from here on, also when it never gets ready
        let mut agent = Self {
            port: 0,
            child,
            file,
        };
        // the script prints its port once it listens; read on a thread, waited for with a
        // deadline
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        agent.port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("a2a_agent.py did not start: {line:?}"));
        agent
    }

    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.file.path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for SdkAgent {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2a_sdk_client_and_agent_through_the_gateway_in_both_versions() {
    let agent = SdkAgent::start();
    let db = TestDb::create().await;
    let yaml = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n{ALLOW_LOOPBACK}",
        u = db.url
    );
    let url = format!("http://127.0.0.1:{}/", agent.port);
    let out =
        crate::it::sdk::run_python_with("a2a_sdk_client.py", &yaml, MASTER_KEY, &[&url]).await;
    let user = out
        .lines()
        .find_map(|l| l.strip_prefix("USER_KEY "))
        .expect("the client's key")
        .trim();

    let got = agent.requests();
    let calls: Vec<&Value> = got.iter().filter(|r| r["method"] == "POST").collect();
    let methods: Vec<String> = calls
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(r["body"].as_str()?).ok())
        .map(|b| b["method"].as_str().unwrap_or_default().to_string())
        .collect();
    for m in [
        "SendMessage",
        "SendStreamingMessage",
        "GetTask",
        "CancelTask",
        "ListTasks",
        "SubscribeToTask",
        "GetExtendedAgentCard",
        "ListTaskPushNotificationConfigs",
        "message/send",
        "message/stream",
        "tasks/get",
        "tasks/cancel",
        "tasks/resubscribe",
        "agent/getAuthenticatedExtendedCard",
    ] {
        assert!(
            methods.iter().any(|x| x == m),
            "{m} never reached the agent: {methods:?}"
        );
    }
    for r in &calls {
        let h = &r["headers"];
        assert_eq!(h["authorization"], format!("Bearer {AGENT_KEY}"), "{r}");
        assert_eq!(h["x-agent-token"], AGENT_HEADER, "{r}");
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        let v1 = body["method"].as_str().is_some_and(|m| !m.contains('/'));
        assert_eq!(h["a2a-version"], if v1 { "1.0" } else { "0.3" }, "{r}");
        let all = r.to_string();
        assert!(
            !all.contains(user) && !all.contains(MASTER_KEY),
            "a caller's key reached the agent: {r}"
        );
    }
}
