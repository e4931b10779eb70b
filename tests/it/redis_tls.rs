//! Redis over TLS (`rediss://`) with the certificate files LiteLLM names (`REDIS_SSL_CA_CERTS`,
//! `REDIS_SSL_CERTFILE`, `REDIS_SSL_KEYFILE`), against a `redis-server` of the test's own that
//! speaks TLS only and asks clients for a certificate.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::Method;

use super::store_tls::{leaf, make_ca};
use crate::common::{TestGateway, eventually_async, send};

struct TlsRedis {
    port: u16,
    child: Child,
    files: tempfile::TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> TlsRedis {
    let ca = make_ca("tianji redis CA");
    let other = make_ca("another CA");
    let (server_crt, server_key) = leaf(&ca, "localhost", &["localhost"]);
    let (client_crt, client_key) = leaf(&ca, "gateway", &[]);
    let files = tempfile::tempdir().unwrap();
    for (name, contents) in [
        ("ca.pem", ca.pem()),
        ("other-ca.pem", other.pem()),
        ("server.crt", server_crt),
        ("server.key", server_key),
        ("client.crt", client_crt),
        ("client.key", client_key),
    ] {
        std::fs::write(files.path().join(name), contents).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = |n: &str| files.path().join(n).display().to_string();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            &f("server.crt"),
            "--tls-key-file",
            &f("server.key"),
        ])
        .args([
            "--tls-ca-cert-file",
            &f("ca.pem"),
            "--tls-auth-clients",
            "yes",
        ])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed");
    TlsRedis { port, child, files }
}

/// The readiness answer's `redis` of a gateway on `url` with the TLS variables `vars`.
async fn readiness(url: &str, vars: &[(&str, String)]) -> String {
    let env: String = vars
        .iter()
        .map(|(k, v)| format!("  {k}: \"{v}\"\n"))
        .collect();
    let gw = TestGateway::start(&format!(
        "model_list: []\nenvironment_variables:\n{env}router_settings:\n  redis_url: \"{url}\"\ngeneral_settings:\n  master_key: sk-x\n  redis_connect_retry_seconds: 0\n"
    ))
    .await;
    let r = send(
        Method::GET,
        &gw.url("/health/readiness"),
        &[],
        Default::default(),
    )
    .await;
    r.json()["redis"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn rediss_with_a_private_ca_and_a_client_certificate() {
    let r = start();
    let f = |n: &str| r.files.path().join(n).display().to_string();
    let url = format!("rediss://localhost:{}", r.port);
    let full = [
        ("REDIS_SSL_CA_CERTS", f("ca.pem")),
        ("REDIS_SSL_CERTFILE", f("client.crt")),
        ("REDIS_SSL_KEYFILE", f("client.key")),
    ];
    // the server is up once a gateway with every file reaches it
    let seen = std::sync::Mutex::new(String::new());
    let up = eventually_async(Duration::from_secs(10), || {
        let (url, full, seen) = (url.clone(), full.clone(), &seen);
        async move {
            let r = readiness(&url, &full).await;
            let ok = r == "connected";
            *seen.lock().unwrap() = r;
            ok
        }
    })
    .await;
    assert!(
        up,
        "a gateway with the CA and a client certificate: {}",
        seen.lock().unwrap()
    );
    // without the client certificate the server refuses the handshake
    assert_eq!(readiness(&url, &full[..1]).await, "unreachable");
    // a CA that did not sign the server's certificate
    assert_eq!(
        readiness(
            &url,
            &[
                ("REDIS_SSL_CA_CERTS", f("other-ca.pem")),
                full[1].clone(),
                full[2].clone()
            ]
        )
        .await,
        "unreachable"
    );
    // plain Redis to a TLS-only port
    assert_eq!(
        readiness(&format!("redis://localhost:{}", r.port), &full).await,
        "unreachable"
    );
}
