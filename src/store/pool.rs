//! The connection pool: bb8 over tokio-postgres (TLS by store::tls, RDS IAM tokens by store::iam),
//! every pooled query prepared once per connection.

use std::time::Duration;

use tokio_postgres::{Client, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::queries::{Query, Registry};

/// A pooled connection with its prepared statements.
pub struct PgConn {
    pub client: Client,
    stmts: Vec<Option<Statement>>,
}

impl PgConn {
    /// The statement prepared for `q` on this connection.
    pub fn stmt(&self, q: Query) -> Option<&Statement> {
        self.stmts.get(q as usize).and_then(Option::as_ref)
    }

    /// The client (to open a transaction on) beside the prepared statements, borrowed apart so
    /// that statements can be looked up while the transaction holds the client.
    pub fn parts(&mut self) -> (&mut Client, Prepared<'_>) {
        (&mut self.client, Prepared(&self.stmts))
    }

    /// Owned handles to several prepared statements (to use inside a transaction, which
    /// borrows the client).
    pub fn stmts<const N: usize>(
        &self,
        qs: [Query; N],
    ) -> Result<[Statement; N], super::StoreError> {
        let mut out = Vec::with_capacity(N);
        for q in qs {
            out.push(self.stmt(q).cloned().ok_or_else(|| {
                super::StoreError::Queries(format!("{} is not prepared", q.name()))
            })?);
        }
        out.try_into()
            .map_err(|_| super::StoreError::Queries("statement count".into()))
    }
}

/// The prepared statements of one connection (see [`PgConn::parts`]).
#[derive(Clone, Copy)]
pub struct Prepared<'a>(&'a [Option<Statement>]);

impl<'a> Prepared<'a> {
    /// The statement prepared for `q`.
    pub fn get(self, q: Query) -> Result<&'a Statement, super::StoreError> {
        self.0
            .get(q as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| super::StoreError::Queries(format!("{} is not prepared", q.name())))
    }
}

/// Connects (over `tls`; with a fresh RDS IAM token as the password when `iam` is set), then
/// prepares every pooled query.
pub struct Manager {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    iam: Option<super::IamTarget>,
    registry: &'static Registry,
}

impl Manager {
    pub fn new(
        config: tokio_postgres::Config,
        tls: MakeRustlsConnect,
        iam: Option<super::IamTarget>,
        registry: &'static Registry,
    ) -> Self {
        Self {
            config,
            tls,
            iam,
            registry,
        }
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = super::StoreError;

    async fn connect(&self) -> Result<PgConn, super::StoreError> {
        let client = match &self.iam {
            None => open(&self.config, &self.tls).await?,
            Some(iam) => {
                let mut config = self.config.clone();
                config.password(iam.token().map_err(super::StoreError::Config)?);
                open(&config, &self.tls).await?
            }
        };
        let mut stmts = vec![None; Query::ALL.len()];
        for q in self.registry.pooled() {
            stmts[q as usize] = Some(client.prepare(self.registry.sql(q)).await?);
        }
        Ok(PgConn { client, stmts })
    }

    async fn is_valid(&self, conn: &mut PgConn) -> Result<(), super::StoreError> {
        conn.client.simple_query("").await?;
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// A client on `config`, its connection driven by a task of its own.
async fn open(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(tls.clone()).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "a PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Where `config` points, as `host:port` (comma-separated when it lists several hosts), never
/// with credentials: for messages about a database that cannot be reached.
pub fn target(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    if hosts.is_empty() {
        "(no host in database_url)".into()
    } else {
        hosts.join(",")
    }
}

/// Whether a failed connection attempt may succeed later: the server could not be reached or
/// is starting up or full. A refusal (bad password, no such database) is final.
pub fn transient(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    match e.code() {
        None => true,
        Some(code) => {
            *code == SqlState::CANNOT_CONNECT_NOW || *code == SqlState::TOO_MANY_CONNECTIONS
        }
    }
}

/// An error with its causes (`error connecting to server: Connection refused ...`).
pub fn describe(e: &tokio_postgres::Error) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Waits between connection attempts at startup: 0.5 s, doubling up to 5 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(5);

    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(Self::MAX);
        wait
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_to_five() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..7).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 5000, 5000, 5000]);
    }

    #[test]
    fn targets_name_host_and_port_never_credentials() {
        let c: tokio_postgres::Config = "postgres://admin:s3cret@db.internal:6543/tianji"
            .parse()
            .unwrap();
        assert_eq!(target(&c), "db.internal:6543");
        let c: tokio_postgres::Config = "host=a,b port=1,2 user=u password=p".parse().unwrap();
        assert_eq!(target(&c), "a:1,b:2");
        let c: tokio_postgres::Config = "postgres://u:p@h/db".parse().unwrap();
        assert_eq!(target(&c), "h:5432");
    }
}
