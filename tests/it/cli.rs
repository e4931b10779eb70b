//! The binary: --version, --check-config with good and bad configs (exit code and message).

use std::io::Write;
use std::process::Command;

fn check(yaml: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(yaml.as_bytes()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tianji"));
    cmd.arg("--config").arg(f.path()).arg("--check-config");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_tianji"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_tianji"))
        .args(["--config", path, "--check-config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn config_errors_are_precise() {
    let cases = [
        (
            "model_list:\n  - model_name: a\n    tianji_params: {model: openai/a, api_key: os.environ/TIANJI_TEST_UNSET_VAR}\n",
            "model_list[0].tianji_params.api_key: environment variable TIANJI_TEST_UNSET_VAR is not set",
        ),
        (
            "model_list:\n  - model_name: a\n    tianji_params: {model: nosuch/a}\n",
            "Unknown provider 'nosuch'",
        ),
        ("model_list: [\n", "not valid YAML"),
        (
            "model_list:\n  - model_name: a\n    tianji_params: {model: openai/a, rpm: many}\n",
            "model_list[0].tianji_params.rpm",
        ),
        (
            "model_list:\n  - model_name: a\n    tianji_params: {model: openai/a, api_base: \"ftp://x\"}\n",
            "invalid api_base",
        ),
        (
            "model_list:\n  - model_name: a\n    tianji_params: {model: hosted_vllm/a}\n",
            "needs api_base",
        ),
        (
            "general_settings: {ssl_certfile: /nonexistent/cert.pem, ssl_keyfile: /nonexistent/key.pem}\n",
            "ssl_certfile /nonexistent/cert.pem",
        ),
        (
            "general_settings: {database_url: \"not a url ::\"}\n",
            "invalid database_url",
        ),
    ];
    for (yaml, needle) in cases {
        // an invalid model entry is left out unless the config asks to refuse it
        let yaml = if yaml.starts_with("model_list") && !needle.contains("environment") {
            format!("{yaml}router_settings: {{ignore_invalid_deployments: false}}\n")
        } else {
            yaml.to_string()
        };
        let yaml = yaml.as_str();
        let (ok, err) = check(yaml, &[]);
        assert!(!ok, "accepted: {yaml}");
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
    }
}

#[test]
fn check_config_does_not_connect_to_the_database() {
    // A well-formed URL to a port where nothing listens: checking must not try to connect.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, err) = check(
        &format!(
            "general_settings: {{database_url: \"postgres://postgres@127.0.0.1:{port}/x\"}}\n"
        ),
        &[],
    );
    assert!(ok, "{err}");
}

#[test]
fn env_references_and_master_key_override() {
    let (ok, err) = check(
        "model_list:\n  - model_name: a\n    tianji_params: {model: openai/a, api_key: os.environ/TIANJI_TEST_SET_VAR}\n",
        &[("TIANJI_TEST_SET_VAR", "sk-x")],
    );
    assert!(ok, "{err}");
    let (ok, err) = check(
        "environment_variables: {FROM_FILE: sk-y}\nmodel_list:\n  - model_name: a\n    tianji_params: {model: openai/a, api_key: os.environ/FROM_FILE}\nunknown_top: 1\n",
        &[],
    );
    assert!(ok, "{err}");
    assert!(err.contains("1 warnings"), "{err}");
}
