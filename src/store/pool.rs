//! The connection pool: bb8 over bb8-postgres, every pooled query prepared once per connection.

use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::{Client, NoTls, Statement};

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

/// Connects, then prepares every pooled query.
pub struct Manager {
    inner: PostgresConnectionManager<NoTls>,
    registry: &'static Registry,
}

impl Manager {
    pub fn new(config: tokio_postgres::Config, registry: &'static Registry) -> Self {
        Self {
            inner: PostgresConnectionManager::new(config, NoTls),
            registry,
        }
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<PgConn, tokio_postgres::Error> {
        let client = self.inner.connect().await?;
        let mut stmts = vec![None; Query::ALL.len()];
        for q in self.registry.pooled() {
            stmts[q as usize] = Some(client.prepare(self.registry.sql(q)).await?);
        }
        Ok(PgConn { client, stmts })
    }

    async fn is_valid(&self, conn: &mut PgConn) -> Result<(), tokio_postgres::Error> {
        self.inner.is_valid(&mut conn.client).await
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}
