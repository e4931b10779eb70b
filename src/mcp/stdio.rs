//! A local MCP server process as an upstream (`transport: stdio`, served only with
//! `general_settings.mcp_allow_stdio_servers`): one process per upstream session (so per
//! client session and server; a sessionless request's for that request only), started from
//! the entry's `command` and `args` with an environment of the entry's `env` plus the
//! gateway's `PATH` and `HOME` only. Messages are newline-delimited JSON-RPC on its stdin and
//! stdout; answers are matched to requests by id by a reader task ([`super::legacy`]'s
//! waiting list); stderr goes to the debug log. The process is killed when its session ends
//! (or its connection is dropped); its exit fails every request still waiting.

use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::client::{MAX_ANSWER, Reply, UpstreamError};
use super::legacy::{Waiting, deliver, expect, fail_all, give_up, waiting};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct Process {
    pub command: String,
    pub args: Vec<String>,
    /// The entry's `env` (the gateway's `PATH` and `HOME` are added when it does not set them).
    pub env: Vec<(String, String)>,
}

/// Variables of the gateway's own environment a process gets (unless `env` sets them).
const INHERITED: &[&str] = &["PATH", "HOME"];

/// Newline-delimited messages read from pieces of any size; a line longer than `max` is an
/// error (the server broke the framing).
#[derive(Debug)]
pub struct Lines {
    carry: Vec<u8>,
    max: usize,
}

/// A line longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

impl Lines {
    pub fn new(max: usize) -> Self {
        Self {
            carry: Vec::new(),
            max,
        }
    }

    /// Feed `bytes`; the non-blank lines they complete (without `\n` or `\r\n`).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, LineTooLong> {
        self.carry.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(n) = memchr::memchr(b'\n', &self.carry[start..]) {
            let line = &self.carry[start..start + n];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > self.max {
                return Err(LineTooLong);
            }
            if !line.trim_ascii().is_empty() {
                out.push(line.to_vec());
            }
            start += n + 1;
        }
        self.carry.drain(..start);
        if self.carry.len() > self.max {
            return Err(LineTooLong);
        }
        Ok(out)
    }
}

/// A running server process.
pub struct Stdio {
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    child: Mutex<Option<Child>>,
    waiting: Waiting,
    reader: JoinHandle<()>,
}

impl Drop for Stdio {
    fn drop(&mut self) {
        self.reader.abort();
        self.close();
    }
}

impl Stdio {
    /// Start `p` for server `name`.
    pub fn spawn(name: &str, p: &Process) -> Result<Self, UpstreamError> {
        let mut cmd = Command::new(&p.command);
        cmd.args(&p.args)
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for k in INHERITED {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.envs(p.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .spawn()
            .map_err(|e| UpstreamError::Connect(format!("cannot start '{}': {e}", p.command)))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(UpstreamError::Connect("no pipes to the process".into()));
        };
        let server = name.to_string();
        tokio::spawn(async move {
            let mut stderr = stderr;
            let mut buf = vec![0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]);
                tracing::debug!(server = %server, stderr = %text.trim_end(), "MCP stdio server");
            }
        });
        let waiting = waiting();
        let reader = tokio::spawn(read(stdout, waiting.clone()));
        Ok(Self {
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            child: Mutex::new(Some(child)),
            waiting,
            reader,
        })
    }

    /// Write one message (a line).
    pub async fn post(&self, mut body: Vec<u8>) -> Result<(), UpstreamError> {
        body.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        let Some(pipe) = stdin.as_mut() else {
            return Err(UpstreamError::Closed);
        };
        let written = async {
            pipe.write_all(&body).await?;
            pipe.flush().await
        };
        if written.await.is_err() {
            stdin.take();
            return Err(UpstreamError::Closed);
        }
        Ok(())
    }

    /// Send request `id` and wait for its answer.
    pub async fn request(&self, id: u64, body: Vec<u8>) -> Result<Reply, UpstreamError> {
        let rx = expect(&self.waiting, id)?;
        if let Err(e) = self.post(body).await {
            give_up(&self.waiting, id);
            return Err(e);
        }
        let got = rx.await.map_err(|_| UpstreamError::Closed);
        give_up(&self.waiting, id);
        got
    }

    /// Kill the process.
    pub fn close(&self) {
        if let Ok(mut c) = self.child.lock()
            && let Some(mut child) = c.take()
        {
            let _ = child.start_kill();
            // reap it in the background so it leaves no zombie
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = child.wait().await;
                });
            }
        }
    }
}

/// Deliver the answers on stdout to their requests, until it ends.
async fn read(mut stdout: ChildStdout, waiting: Waiting) {
    let mut lines = Lines::new(MAX_ANSWER);
    let mut buf = vec![0u8; 64 << 10];
    while let Ok(n @ 1..) = stdout.read(&mut buf).await {
        let Ok(got) = lines.feed(&buf[..n]) else {
            tracing::warn!("MCP stdio server wrote a line over the answer limit: stopped");
            break;
        };
        for line in got {
            deliver(&waiting, &line);
        }
    }
    fail_all(&waiting);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_however_split() {
        let text = b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\"";
        let mut whole = Lines::new(64);
        let all = whole.feed(text).unwrap();
        assert_eq!(all, vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        for cut in 0..text.len() {
            let mut l = Lines::new(64);
            let mut got = l.feed(&text[..cut]).unwrap();
            got.extend(l.feed(&text[cut..]).unwrap());
            assert_eq!(got, all, "cut at {cut}");
        }
        let mut l = Lines::new(4);
        assert_eq!(l.feed(b"12345\n"), Err(LineTooLong));
        let mut l = Lines::new(4);
        assert_eq!(l.feed(b"12345"), Err(LineTooLong));
    }

    #[tokio::test]
    async fn a_process_that_exits_fails_its_requests() {
        let p = Process {
            command: "sh".into(),
            args: vec!["-c".into(), "read line; echo \"$HOME|$SECRET_OF_GATEWAY|$MINE\" >&2; echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"ok\":true}}'; exit 0".into()],
            env: vec![("MINE".into(), "yes".into())],
        };
        let s = Stdio::spawn("t", &p).unwrap();
        let got = s.request(1, b"{}".to_vec()).await.unwrap().unwrap();
        assert_eq!(got.get(), r#"{"ok":true}"#);
        let again = s.request(2, b"{}".to_vec()).await;
        assert!(matches!(again, Err(UpstreamError::Closed)), "{again:?}");
        let missing = Process {
            command: "/nonexistent/mcp-server".into(),
            ..Process::default()
        };
        assert!(matches!(
            Stdio::spawn("t", &missing),
            Err(UpstreamError::Connect(_))
        ));
    }
}
