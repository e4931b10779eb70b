//! A private `redis-server` for tests that stop Redis or count its commands, so they never
//! disturb the shared one other tests use.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;

pub struct TempRedis {
    pub port: u16,
    child: Option<Child>,
}

impl TempRedis {
    pub async fn start() -> Self {
        let mut r = Self {
            port: free_port(),
            child: None,
        };
        r.up().await;
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start the server (again) on the same port, empty.
    pub async fn up(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (from Debian's redis-server package) must be installed");
        self.child = Some(child);
        let client = self.client();
        let answers = super::eventually_async(Duration::from_secs(10), || {
            let client = client.clone();
            async move {
                match client.get_multiplexed_async_connection().await {
                    Ok(mut c) => redis::cmd("PING")
                        .query_async::<String>(&mut c)
                        .await
                        .is_ok(),
                    Err(_) => false,
                }
            }
        })
        .await;
        assert!(answers, "redis-server on port {} did not answer", self.port);
    }

    /// Stop the server.
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }

    /// Calls of `command` (lowercase, e.g. `evalsha`) since the server started.
    pub async fn calls(&self, command: &str) -> u64 {
        let mut c = self
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut c)
            .await
            .unwrap();
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        self.down();
    }
}
