//! The official `openai` Python SDK, unchanged, against the `tianji` binary.
//! The interpreter is `$TIANJI_TEST_PYTHON`, else `.venv/bin/python` (created by scripts/test).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::mock_upstream::MockUpstream;

pub(crate) fn python() -> String {
    std::env::var("TIANJI_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").to_string())
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the `tianji` binary with `yaml`, run `tests/python/{script} BASE KEY` and require
/// it to print "ALL OK".
pub async fn run_python(script: &str, yaml: &str, key: &str) {
    run_python_with(script, yaml, key, &[]).await;
}

/// [`run_python`] with more arguments after `BASE KEY`; what the script printed.
pub async fn run_python_with(script: &str, yaml: &str, key: &str, args: &[&str]) -> String {
    let py = python();
    assert!(
        std::path::Path::new(&py).exists() || std::env::var("TIANJI_TEST_PYTHON").is_ok(),
        "Python with the SDKs not found at {py}: run scripts/test (it creates .venv) or set TIANJI_TEST_PYTHON"
    );
    let mut cfg = tempfile::NamedTempFile::new().unwrap();
    cfg.write_all(yaml.as_bytes()).unwrap();
    let (child, port) = crate::common::spawn_tianji(cfg.path(), "error");
    let _gw = Child(child);
    run_python_script(script, &format!("http://127.0.0.1:{port}"), key, args).await
}

/// Run `tests/python/{script} BASE KEY ARGS...` against a gateway at `base` and require it to
/// print "ALL OK"; what it printed.
pub async fn run_python_script(script: &str, base: &str, key: &str, args: &[&str]) -> String {
    let script = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(python());
    cmd.arg(script)
        .arg(base.trim_end_matches('/'))
        .arg(key)
        .args(args)
        .env("PYTHONUNBUFFERED", "1");
    let out = output_within(cmd, Duration::from_secs(180)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sdk check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ALL OK"), "{stdout}");
    stdout.into_owned()
}

/// Run `cmd` to its end and take its output; a hung client is killed at `limit`, so it fails
/// the test instead of hanging the run.
pub async fn output_within(mut cmd: Command, limit: Duration) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let end = std::time::Instant::now() + limit;
        while child.try_wait().unwrap().is_none() && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_chat_stream_embeddings_models() {
    let up = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: gpt-test\n    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: emb-test\n    tianji_params: {{model: openai/text-embedding-3-small, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings: {{master_key: sk-sdk-test}}\n",
        b = up.base()
    );
    run_python("sdk_check.py", &yaml, "sk-sdk-test").await;
}
