//! Redis topologies of the test's own, made of real `redis-server` processes: a Redis Cluster
//! (primaries with a replica each, `redis-cli --cluster create`) and a primary with a replica
//! watched by a sentinel. Every process is killed when the value is dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually_async, free_port};

/// One `redis-server` process.
struct Server {
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn spawn(dir: &std::path::Path, args: &[String]) -> Self {
        let port = free_port();
        Self::spawn_on(port, dir, args)
    }

    fn spawn_on(port: u16, dir: &std::path::Path, args: &[String]) -> Self {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            // replicas in sync at once (not after diskless sync's 5 s wait), and always
            // allowed to take over (whatever their data's age)
            "--repl-diskless-sync-delay",
            "0",
            "--cluster-replica-validity-factor",
            "0",
            "--dir",
            dir.to_str().unwrap(),
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .expect("redis-server (Debian's redis-server package) must be installed");
        Server {
            port,
            child: Some(child),
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `cmd args...` against the server on `port`, its answer as text.
pub async fn ask(port: u16, args: &[&str]) -> redis::RedisResult<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut c = client.get_multiplexed_async_connection().await?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let v: redis::Value = cmd.query_async(&mut c).await?;
    Ok(match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::SimpleString(s) => s,
        redis::Value::VerbatimString { text, .. } => text,
        redis::Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    })
}

async fn wait_ping(port: u16) {
    let up = eventually_async(Duration::from_secs(10), || async move {
        ask(port, &["PING"]).await.is_ok()
    })
    .await;
    assert!(up, "redis-server on {port} did not start");
}

/// A Redis Cluster of `primaries` primaries, each with one replica.
pub struct RedisCluster {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    pub async fn start(primaries: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let servers: Vec<Server> = (0..primaries * 2)
            .map(|_| {
                Server::spawn(
                    dir.path(),
                    &[
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-node-timeout".into(),
                        "1000".into(),
                        "--cluster-config-file".into(),
                        format!("nodes-{}.conf", uuid_like()),
                    ],
                )
            })
            .collect();
        for s in &servers {
            wait_ping(s.port).await;
        }
        let addrs: Vec<String> = servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli (Debian's redis-tools) must be installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let c = RedisCluster { servers, _dir: dir };
        c.wait_ok().await;
        c.wait_replicas().await;
        c
    }

    /// Until every replica's link to its primary is up (a replica that never synced cannot
    /// take over).
    async fn wait_replicas(&self) {
        for p in self.live_ports() {
            let synced = eventually_async(Duration::from_secs(20), || async move {
                ask(p, &["INFO", "replication"])
                    .await
                    .is_ok_and(|i| i.contains("role:master") || i.contains("master_link_status:up"))
            })
            .await;
            assert!(synced, "the replica on {p} never synced");
        }
    }

    /// Until every live node says the cluster is ok with every slot served.
    pub async fn wait_ok(&self) {
        let ports: Vec<u16> = self.live_ports();
        let ok = eventually_async(Duration::from_secs(30), || {
            let ports = ports.clone();
            async move {
                for p in ports {
                    match ask(p, &["CLUSTER", "INFO"]).await {
                        Ok(i)
                            if i.contains("cluster_state:ok")
                                && i.contains("cluster_slots_ok:16384") => {}
                        _ => return false,
                    }
                }
                true
            }
        })
        .await;
        assert!(ok, "the cluster never became ok");
    }

    fn live_ports(&self) -> Vec<u16> {
        self.servers
            .iter()
            .filter(|s| s.child.is_some())
            .map(|s| s.port)
            .collect()
    }

    /// `router_settings` lines naming every node.
    pub fn startup_nodes_yaml(&self) -> String {
        let nodes: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("{{host: 127.0.0.1, port: {}}}", s.port))
            .collect();
        format!("  redis_startup_nodes: [{}]\n", nodes.join(", "))
    }

    /// The port of the primary serving `key`'s slot.
    pub async fn primary_of(&self, key: &str) -> u16 {
        let any = self.live_ports()[0];
        let slot: u16 = ask(any, &["CLUSTER", "KEYSLOT", key])
            .await
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("keyslot of {key}"));
        let nodes = ask(any, &["CLUSTER", "NODES"]).await.unwrap();
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if !f.get(2).is_some_and(|x| x.contains("master")) || f[2].contains("fail") {
                continue;
            }
            for range in &f[8..] {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>())
                    && (a..=b).contains(&slot)
                {
                    let addr = f[1].split('@').next().unwrap();
                    return addr.rsplit_once(':').unwrap().1.parse().unwrap();
                }
            }
        }
        panic!("no primary serves slot {slot}")
    }

    /// Kill the server on `port` (SIGKILL).
    pub fn kill(&mut self, port: u16) {
        for s in &mut self.servers {
            if s.port == port {
                s.kill();
            }
        }
    }

    /// Kill the primary on `port` and wait until the cluster marked it failed and is ok again
    /// (its replica promoted).
    pub async fn fail_over(&mut self, port: u16) {
        self.kill(port);
        let any = self.live_ports()[0];
        let marked = eventually_async(Duration::from_secs(30), || async move {
            ask(any, &["CLUSTER", "NODES"]).await.is_ok_and(|nodes| {
                nodes.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.get(1)
                        .is_some_and(|a| a.starts_with(&format!("127.0.0.1:{port}@")))
                        && f.get(2).is_some_and(|x| x.split(',').any(|x| x == "fail"))
                })
            })
        })
        .await;
        assert!(marked, "the cluster never marked {port} failed");
        self.wait_ok().await;
    }
}

/// A per-process unique name part.
fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// A primary, its replica and a sentinel watching them as `mymaster`.
pub struct RedisSentinel {
    pub primary: u16,
    pub replica: u16,
    pub sentinel: u16,
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    pub const SERVICE: &'static str = "mymaster";

    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let primary = Server::spawn(dir.path(), &[]);
        wait_ping(primary.port).await;
        let replica = Server::spawn(
            dir.path(),
            &[
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.port.to_string(),
            ],
        );
        wait_ping(replica.port).await;
        let sport = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sport}\nbind 127.0.0.1\nsentinel monitor {s} 127.0.0.1 {p} 1\nsentinel down-after-milliseconds {s} 1000\nsentinel failover-timeout {s} 5000\n",
                s = Self::SERVICE,
                p = primary.port
            ),
        )
        .unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sentinel = Server {
            port: sport,
            child: Some(child),
        };
        wait_ping(sport).await;
        let s = RedisSentinel {
            primary: primary.port,
            replica: replica.port,
            sentinel: sport,
            servers: vec![primary, replica, sentinel],
            _dir: dir,
        };
        // the replica in sync before anything relies on it
        let synced = eventually_async(Duration::from_secs(20), || async {
            ask(s.replica, &["INFO", "replication"])
                .await
                .is_ok_and(|i| i.contains("master_link_status:up"))
        })
        .await;
        assert!(synced, "the replica never synced");
        s
    }

    /// `router_settings` lines naming the sentinel.
    pub fn yaml(&self) -> String {
        format!(
            "  service_name: {}\n  sentinel_nodes: [[127.0.0.1, {}]]\n",
            Self::SERVICE,
            self.sentinel
        )
    }

    /// The port the sentinel names as primary now.
    pub async fn current_primary(&self) -> Option<u16> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.sentinel)).ok()?;
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        let addr: Vec<String> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(Self::SERVICE)
            .query_async(&mut c)
            .await
            .ok()?;
        addr.get(1)?.parse().ok()
    }

    /// Kill the primary (SIGKILL).
    pub fn kill_primary(&mut self) {
        let p = self.primary;
        for s in &mut self.servers {
            if s.port == p {
                s.kill();
            }
        }
    }
}
