//! Schema migrations: `sql/schema/NNNN_name.sql`, compiled in, applied in order at startup, each
//! in its own transaction and recorded in `tianji_schema_migrations`. A Postgres advisory lock
//! serialises instances that start together.

use std::collections::HashSet;

use tokio_postgres::Client;

use super::StoreError;
use super::queries::{Query, Registry};

/// Every migration, in order (a unit test checks this list against `sql/schema/`).
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_governance",
        include_str!("../../sql/schema/0001_governance.sql"),
    ),
    (
        "0002_spend",
        include_str!("../../sql/schema/0002_spend.sql"),
    ),
    (
        "0003_router",
        include_str!("../../sql/schema/0003_router.sql"),
    ),
];

/// Apply what is missing; returns the versions applied now.
pub async fn run(client: &mut Client, reg: &Registry) -> Result<Vec<String>, StoreError> {
    client.batch_execute(reg.sql(Query::LockMigrations)).await?;
    let result = apply(client, reg).await;
    let unlock = client.batch_execute(reg.sql(Query::UnlockMigrations)).await;
    let applied = result?;
    unlock?;
    Ok(applied)
}

async fn apply(client: &mut Client, reg: &Registry) -> Result<Vec<String>, StoreError> {
    client
        .batch_execute(reg.sql(Query::CreateMigrationsTable))
        .await?;
    let done: HashSet<String> = client
        .query(reg.sql(Query::AppliedMigrations), &[])
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        if done.contains(*version) {
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql)
            .await
            .map_err(|source| StoreError::Migration {
                version: version.to_string(),
                source,
            })?;
        tx.execute(reg.sql(Query::RecordMigration), &[version])
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied schema migration");
        applied.push(version.to_string());
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/schema");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .map(|n| n.trim_end_matches(".sql").to_string())
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(v, _)| v.to_string()).collect();
        assert_eq!(files, listed);
    }
}
