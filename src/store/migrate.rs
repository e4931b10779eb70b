//! Schema migrations: `sql/schema/NNNN_name.sql`, compiled in, applied in order at startup, each
//! in its own transaction and recorded in `tianji_schema_migrations`. A Postgres advisory lock
//! serialises instances that start together. Under the same lock, the unique alias indexes are
//! created or dropped as `general_settings.enforce_unique_*_alias` asks.

use std::collections::HashSet;

use tokio_postgres::Client;

use super::queries::{Query, Registry};
use super::{StoreError, UniqueAliases};

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
    (
        "0004_error_logs",
        include_str!("../../sql/schema/0004_error_logs.sql"),
    ),
    (
        "0005_invitations",
        include_str!("../../sql/schema/0005_invitations.sql"),
    ),
    (
        "0006_agents",
        include_str!("../../sql/schema/0006_agents.sql"),
    ),
    (
        "0007_agent_spend",
        include_str!("../../sql/schema/0007_agent_spend.sql"),
    ),
    (
        "0008_claude_code_plugins",
        include_str!("../../sql/schema/0008_claude_code_plugins.sql"),
    ),
    (
        "0009_mcp_servers",
        include_str!("../../sql/schema/0009_mcp_servers.sql"),
    ),
    (
        "0010_skills",
        include_str!("../../sql/schema/0010_skills.sql"),
    ),
    (
        "0011_message_batches",
        include_str!("../../sql/schema/0011_message_batches.sql"),
    ),
    (
        "0012_vector_stores",
        include_str!("../../sql/schema/0012_vector_stores.sql"),
    ),
    (
        "0013_managed_objects",
        include_str!("../../sql/schema/0013_managed_objects.sql"),
    ),
    (
        "0014_prompts",
        include_str!("../../sql/schema/0014_prompts.sql"),
    ),
    (
        "0015_managed_files",
        include_str!("../../sql/schema/0015_managed_files.sql"),
    ),
    (
        "0016_cron_jobs",
        include_str!("../../sql/schema/0016_cron_jobs.sql"),
    ),
    (
        "0017_spend_log_indexes",
        include_str!("../../sql/schema/0017_spend_log_indexes.sql"),
    ),
];

/// Apply what is missing, then create or drop the unique alias indexes; returns the versions
/// applied now.
pub async fn run(
    client: &mut Client,
    reg: &Registry,
    unique: UniqueAliases,
) -> Result<Vec<String>, StoreError> {
    client.batch_execute(reg.sql(Query::LockMigrations)).await?;
    let result = match apply(client, reg).await {
        Ok(applied) => unique_aliases(client, reg, unique).await.map(|()| applied),
        Err(e) => Err(e),
    };
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

/// One alias column that may be kept unique: its flag, its index, the queries that make it.
struct AliasIndex {
    flag: &'static str,
    on: bool,
    create: Query,
    drop: Query,
}

/// Create the unique index of each alias whose flag is on, drop it where the flag is off (so
/// that duplicates are accepted again). Rows that already share an alias keep the index from
/// being built: an error naming the flag and the duplicate.
async fn unique_aliases(
    client: &Client,
    reg: &Registry,
    unique: UniqueAliases,
) -> Result<(), StoreError> {
    let indexes = [
        AliasIndex {
            flag: "enforce_unique_team_alias",
            on: unique.team,
            create: Query::CreateTeamAliasIndex,
            drop: Query::DropTeamAliasIndex,
        },
        AliasIndex {
            flag: "enforce_unique_organization_alias",
            on: unique.organization,
            create: Query::CreateOrgAliasIndex,
            drop: Query::DropOrgAliasIndex,
        },
    ];
    for ix in indexes {
        let q = if ix.on { ix.create } else { ix.drop };
        client.batch_execute(reg.sql(q)).await.map_err(|e| {
            let detail = e
                .as_db_error()
                .map(|d| d.detail().unwrap_or(d.message()).to_string());
            match detail {
                Some(detail) => StoreError::UniqueAlias {
                    flag: ix.flag,
                    detail,
                },
                None => StoreError::Db(e),
            }
        })?;
    }
    Ok(())
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
