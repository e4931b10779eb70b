//! Issue 23's alerting and management events: Slack and webhook receivers of our own, a real
//! SMTP server (aiosmtpd, `tests/python/smtp_sink.py`), invitations, deduplication across two
//! instances sharing Redis, and no secret in any alert or e-mail.

mod channels;
mod email;
mod management;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::{MASTER_KEY, Resp, TestGateway};
use crate::it::admin_keys::call;

pub(super) const WAIT: Duration = Duration::from_secs(20);
pub(super) const PROVIDER_KEY: &str = "sk-provider-secret-xyz";

/// A receiver answering `reply` to every request (Slack, webhooks).
pub(super) async fn receiver(reply: impl Fn() -> Reply + Send + Sync + 'static) -> MockUpstream {
    MockUpstream::with(Arc::new(move |_: &Recorded| reply())).await
}

pub(super) fn ok_reply() -> Reply {
    Reply::status(200, json!({"ok": true}))
}

/// Every JSON body a receiver got.
pub(super) fn bodies(r: &MockUpstream) -> Vec<Value> {
    r.requests().iter().map(Recorded::json).collect()
}

/// The Slack texts a receiver got.
pub(super) fn texts(r: &MockUpstream) -> Vec<String> {
    bodies(r)
        .iter()
        .filter_map(|b| b["text"].as_str().map(str::to_string))
        .collect()
}

/// Nothing a receiver got contains any of `secrets`.
pub(super) fn assert_no_secrets(r: &MockUpstream, secrets: &[&str]) {
    for req in r.requests() {
        let text = req.text();
        for s in secrets {
            assert!(!text.contains(s), "a receiver got the secret {s}: {text}");
        }
    }
}

/// A gateway over `db` with one model `gpt` on `up` (and `gpt2`, `gpt3` on the same
/// upstream), `general` added to general_settings and `env` as environment variables.
pub(super) async fn gateway(
    db: &TestDb,
    up: &MockUpstream,
    general: &str,
    env: &str,
) -> TestGateway {
    let b = up.base();
    let models: String = ["gpt", "gpt2", "gpt3"]
        .iter()
        .map(|m| {
            format!(
                "  - model_name: {m}\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: {PROVIDER_KEY}}}\n"
            )
        })
        .collect();
    let yaml = format!(
        "model_list:\n{models}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n{general}\nenvironment_variables:\n  TIANJI_ALERT_TEST: \"1\"\n{env}\n",
        u = db.url
    );
    TestGateway::start(&yaml).await
}

pub(super) async fn admin(gw: &TestGateway, method: Method, path: &str, body: Value) -> Resp {
    call(gw, method, path, MASTER_KEY, body).await
}

/// A real SMTP server: aiosmtpd through `tests/python/smtp_sink.py`, each message a JSON line
/// in a file; stopped when dropped.
pub(super) struct SmtpSink {
    pub port: u16,
    child: Child,
    file: tempfile::NamedTempFile,
}

impl SmtpSink {
    pub fn start() -> Self {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/smtp_sink.py");
        let mut child = Command::new(crate::it::sdk::python())
            .arg(script)
            .arg(file.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python with aiosmtpd (run scripts/test to create .venv)");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("READY line");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("smtp_sink.py did not start: {line:?}"));
        Self { port, child, file }
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(self.file.path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// `environment_variables` lines pointing the gateway at this server (plain SMTP with AUTH).
    pub fn env(&self, password: &str) -> String {
        format!(
            "  SMTP_HOST: \"127.0.0.1\"\n  SMTP_PORT: \"{}\"\n  SMTP_USERNAME: \"alerts\"\n  SMTP_PASSWORD: \"{password}\"\n  SMTP_SENDER_EMAIL: \"alerts@tianji.test\"\n  SMTP_TLS: \"False\"\n  PROXY_BASE_URL: \"http://gw.example\"\n",
            self.port
        )
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
