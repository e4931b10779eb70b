//! A PostgreSQL cluster of its own: `initdb` in a temporary directory (run as the `postgres`
//! user when the caller is root), started on a free port, stopped and removed on drop. For
//! what the machine's server cannot be made to do: TLS with a test's own certificates, a
//! bench's CPU counted alone. Shared by the integration tests and the load bench (through
//! `#[path]`), so it uses std and tempfile only.

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    root: bool,
}

/// The directory of `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn pg_bin() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok();
    if let Some(o) = out.filter(|o| o.status.success()) {
        let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if p.join("initdb").exists() {
            return Some(p);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

fn free_port() -> Option<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    Some(l.local_addr().ok()?.port())
}

impl PgCluster {
    /// A new cluster (trust authentication), with `files` written into its data directory
    /// (name, contents; mode 0600: a `pg_hba.conf` replaces the one `initdb` wrote), started
    /// with the server `settings` (`name=value`, as `postgres -c`). `None` when PostgreSQL's
    /// programs are not installed or the cluster does not start.
    pub fn start(settings: &[&str], files: &[(&str, &str)]) -> Option<Self> {
        let bin = pg_bin()?;
        let dir = tempfile::tempdir().ok()?;
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if root {
            let _ = Command::new("chown")
                .args(["postgres:", dir.path().to_str()?])
                .status();
        }
        let port = free_port()?;
        let me = Self {
            bin,
            dir,
            port,
            root,
        };
        let data = me.data();
        let ok = me
            .run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres"])
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        for (name, contents) in files {
            let path = format!("{data}/{name}");
            std::fs::write(&path, contents).ok()?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).ok()?;
            if root {
                let _ = Command::new("chown").args(["postgres:", &path]).status();
            }
        }
        let mut opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {}",
            me.dir.path().display()
        );
        for s in settings {
            opts.push_str(" -c ");
            opts.push_str(s);
        }
        let log = format!("{}/log", me.dir.path().display());
        let ok = me
            .run(
                "pg_ctl",
                &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"],
            )
            .status()
            .ok()?
            .success();
        ok.then_some(me)
    }

    pub fn data(&self) -> String {
        format!("{}/data", self.dir.path().display())
    }

    fn run(&self, tool: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(tool);
        let mut c = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        c
    }

    /// The superuser's URL on the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .status();
    }
}
