//! Named SQL: `sql/queries/*.sql` compiled in, split on `-- name: X` markers. Rust code refers
//! to a query by its [`Query`] variant; the text lives only in the `.sql` files.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Query files compiled into the binary (prepared in the pool unless listed in `UNPOOLED_FILES`).
const FILES: &[(&str, &str)] = &[
    ("audit.sql", include_str!("../../sql/queries/audit.sql")),
    ("agents.sql", include_str!("../../sql/queries/agents.sql")),
    ("plugins.sql", include_str!("../../sql/queries/plugins.sql")),
    (
        "mcp_servers.sql",
        include_str!("../../sql/queries/mcp_servers.sql"),
    ),
    ("skills.sql", include_str!("../../sql/queries/skills.sql")),
    ("prompts.sql", include_str!("../../sql/queries/prompts.sql")),
    (
        "vector_stores.sql",
        include_str!("../../sql/queries/vector_stores.sql"),
    ),
    (
        "message_batches.sql",
        include_str!("../../sql/queries/message_batches.sql"),
    ),
    (
        "managed_objects.sql",
        include_str!("../../sql/queries/managed_objects.sql"),
    ),
    (
        "managed_files.sql",
        include_str!("../../sql/queries/managed_files.sql"),
    ),
    ("health.sql", include_str!("../../sql/queries/health.sql")),
    ("router.sql", include_str!("../../sql/queries/router.sql")),
    ("keys.sql", include_str!("../../sql/queries/keys.sql")),
    ("models.sql", include_str!("../../sql/queries/models.sql")),
    ("budgets.sql", include_str!("../../sql/queries/budgets.sql")),
    ("teams.sql", include_str!("../../sql/queries/teams.sql")),
    ("users.sql", include_str!("../../sql/queries/users.sql")),
    (
        "invitations.sql",
        include_str!("../../sql/queries/invitations.sql"),
    ),
    (
        "organizations.sql",
        include_str!("../../sql/queries/organizations.sql"),
    ),
    (
        "end_users.sql",
        include_str!("../../sql/queries/end_users.sql"),
    ),
    ("spend.sql", include_str!("../../sql/queries/spend.sql")),
    (
        "spend_reports.sql",
        include_str!("../../sql/queries/spend_reports.sql"),
    ),
    (
        "daily_activity.sql",
        include_str!("../../sql/queries/daily_activity.sql"),
    ),
    (
        "budget_resets.sql",
        include_str!("../../sql/queries/budget_resets.sql"),
    ),
    (
        "cron_jobs.sql",
        include_str!("../../sql/queries/cron_jobs.sql"),
    ),
    (
        "model_metrics.sql",
        include_str!("../../sql/queries/model_metrics.sql"),
    ),
    (
        "migrations.sql",
        include_str!("../../sql/queries/migrations.sql"),
    ),
];

/// Files whose queries run before the schema exists, so they are never prepared in the pool.
const UNPOOLED_FILES: &[&str] = &["migrations.sql"];

macro_rules! queries {
    ($($name:ident),* $(,)?) => {
        /// Every named query.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Query { $($name),* }
        impl Query {
            pub const ALL: &'static [Query] = &[$(Query::$name),*];
            pub fn name(self) -> &'static str {
                match self { $(Query::$name => stringify!($name)),* }
            }
        }
    };
}

queries! {
    Ping,
    ListAgents,
    GetAgentForUpdate,
    GetAgentByName,
    InsertAgent,
    UpdateAgent,
    DeleteAgent,
    ListMcpServers,
    GetMcpServerById,
    GetMcpServerForUpdate,
    GetMcpServerByName,
    InsertMcpServer,
    UpdateMcpServer,
    DeleteMcpServer,
    ListPlugins,
    GetPluginForUpdate,
    InsertPlugin,
    UpdatePlugin,
    DeletePlugin,
    InsertVectorStore,
    GetVectorStore,
    ListVectorStores,
    EmbeddedVectorStores,
    UpdateVectorStoreObject,
    SetVectorStoreDimensions,
    DeleteVectorStore,
    GetVectorStoreIndex,
    VectorStoreCounts,
    InsertVectorStoreFile,
    GetVectorStoreFile,
    ListVectorStoreFiles,
    SetVectorStoreFileFilename,
    FinishVectorStoreFile,
    SetVectorStoreFileAttributes,
    DeleteVectorStoreFile,
    InsertVectorStoreChunks,
    DeleteVectorStoreFileChunks,
    LoadVectorStoreChunks,
    GetVectorStoreChunks,
    VectorStoreFileText,
    InsertVectorStoreFileBatch,
    GetVectorStoreFileBatch,
    SetVectorStoreFileBatchStatus,
    CancelVectorStoreBatchFiles,
    TouchVectorStore,
    TouchVectorStoreFile,
    FailStaleVectorStoreFiles,
    ListSkills,
    SkillHomes,
    ListPrompts,
    LockPrompt,
    GetPromptVersions,
    InsertPromptVersion,
    UpdatePromptVersion,
    DeletePrompt,
    GetSkill,
    SkillArchive,
    InsertSkill,
    SetSkillLatest,
    DeleteSkill,
    InsertSkillVersion,
    ListSkillVersions,
    DeleteSkillVersion,
    InsertMessageBatch,
    ListMessageBatches,
    ClaimMessageBatchSpend,
    DeleteMessageBatch,
    InsertManagedObject,
    UpdateManagedObject,
    ListManagedObjects,
    DeleteManagedObject,
    InsertManagedFile,
    GetManagedFile,
    ManagedFileOfProviderId,
    SetManagedFileObject,
    SetManagedFileMappings,
    DeleteManagedFile,
    ListManagedFiles,
    ExistingSpendLogs,
    StoredSpendLogCalls,
    CopySpendLogs,
    CopySpendLogsLean,
    InsertErrorLogs,
    FlushKeySpend,
    FlushUserSpend,
    FlushTeamSpend,
    FlushTeamMemberSpend,
    FlushOrganizationSpend,
    FlushEndUserSpend,
    FlushTagSpend,
    FlushAgentSpend,
    FlushDailyUserSpend,
    FlushDailyTeamSpend,
    FlushDailyOrganizationSpend,
    FlushDailyEndUserSpend,
    FlushDailyTagSpend,
    FlushDailyAgentSpend,
    SpendLogsRows,
    ErrorLogsRows,
    InsertInvitation,
    DailyAlertReport,
    SpendReportAlert,
    GetInvitation,
    AcceptInvitation,
    DeleteInvitation,
    SpendLogsSummary,
    SpendKeys,
    SpendUsers,
    SpendTeams,
    SpendEndUsers,
    SpendModels,
    SpendTags,
    GlobalActivity,
    GlobalActivityModel,
    GlobalActivityCacheHits,
    GlobalSpend,
    GlobalSpendKeys,
    GlobalSpendModels,
    GlobalSpendTeams,
    GlobalSpendTags,
    GlobalSpendProvider,
    GlobalSpendEndUsers,
    GlobalSpendReportTeams,
    GlobalSpendReportCustomers,
    GlobalSpendReportKeys,
    GlobalSpendReportTeamCustomers,
    ResetAllKeySpend,
    ResetAllTeamSpend,
    DailyUserActivity,
    DailyTeamActivity,
    DailyOrganizationActivity,
    DailyEndUserActivity,
    DailyAgentActivity,
    ModelLatencyPerToken,
    ModelSlowResponses,
    ModelExceptions,
    EnsureCronJob,
    ClaimCronJob,
    RenewCronJob,
    FinishCronJob,
    CronJobResult,
    ListCronJobs,
    PruneCronJobRuns,
    DeleteOldSpendLogs,
    DeleteOldErrorLogs,
    DeleteOldAuditLogs,
    ResetDueKeys,
    ResetDueUsers,
    ResetDueTeams,
    ResetDueBudgets,
    ResetBudgetOrganizations,
    ResetBudgetEndUsers,
    ResetBudgetTeamMembers,
    GetKeyByToken,
    InsertKey,
    GetKeyRowsByTokens,
    GetKeyTokensByAliases,
    KeyAliasTaken,
    ArchiveKeys,
    DeleteKeys,
    SetKeyBlocked,
    UpdateKey,
    ListKeys,
    CountKeys,
    ListKeyAliases,
    CountKeyAliases,
    ResetKeySpend,
    RotateKey,
    InsertAuditLog,
    ListAuditLogs,
    CountAuditLogs,
    GetAuditLog,
    GetTeamRecord,
    GetMembershipRecord,
    GetUserRecord,
    GetOrgRecord,
    GetEndUserRecord,
    InsertTeam,
    GetTeamRows,
    UpdateTeam,
    ArchiveTeams,
    DeleteTeams,
    TeamKeyTokens,
    TeamKeys,
    TeamMemberships,
    DeleteTeamMemberships,
    UpsertMembership,
    GetMembershipForUpdate,
    DeleteMembership,
    ListTeams,
    TeamsByIds,
    RemoveTeamFromUsers,
    MemberKeyTokens,
    InsertUser,
    EnsureUser,
    UserIdByEmail,
    AddUserTeam,
    RemoveUserTeam,
    GetUserRows,
    UpdateUser,
    DeleteUsers,
    UserKeyTokens,
    UserKeys,
    DeleteUserMemberships,
    DeleteUserOrgMemberships,
    ListUsers,
    CountUsers,
    RemoveUsersFromTeams,
    InsertEndUser,
    GetEndUserRows,
    UpdateEndUser,
    DeleteEndUsers,
    ListEndUsers,
    InsertOrg,
    GetOrgRows,
    UpdateOrg,
    DeleteOrgs,
    DeleteOrgMemberships,
    ListOrgs,
    OrgMembers,
    OrgTeams,
    UpsertOrgMembership,
    GetOrgMembership,
    DeleteOrgMembership,
    SetUserOrg,
    ListProxyModels,
    GetConfigParam,
    InsertHealthCheck,
    ListHealthChecks,
    PutConfigParam,
    InsertProxyModel,
    GetProxyModel,
    UpdateProxyModel,
    DeleteProxyModel,
    LockProxyModelParams,
    SetProxyModelParams,
    InsertBudget,
    GetBudgetRows,
    UpdateBudget,
    DeleteBudgets,
    ListBudgets,
    BudgetInUse,
    InsertObjectPermission,
    GetObjectPermission,
    CreateMigrationsTable,
    LockMigrations,
    UnlockMigrations,
    AppliedMigrations,
    RecordMigration,
    CreateTeamAliasIndex,
    DropTeamAliasIndex,
    CreateOrgAliasIndex,
    DropOrgAliasIndex,
}

/// A query file is malformed or a [`Query`] has no text (caught by unit tests).
#[derive(Debug, thiserror::Error)]
pub enum QueryFileError {
    #[error("{file}: query `{name}` is defined twice")]
    Duplicate { file: String, name: String },
    #[error("{file}: SQL before the first `-- name:` marker")]
    Orphan { file: String },
    #[error("query `{0}` is not defined in sql/queries")]
    Missing(&'static str),
}

struct Entry {
    sql: String,
    pooled: bool,
}

fn split(file: &str, text: &str, out: &mut HashMap<String, Entry>) -> Result<(), QueryFileError> {
    let pooled = !UNPOOLED_FILES.contains(&file);
    let mut current: Option<(String, String)> = None;
    let flush = |cur: Option<(String, String)>, out: &mut HashMap<String, Entry>| {
        if let Some((name, sql)) = cur {
            let sql = sql.trim().trim_end_matches(';').trim().to_string();
            if out.insert(name.clone(), Entry { sql, pooled }).is_some() {
                return Err(QueryFileError::Duplicate {
                    file: file.to_string(),
                    name,
                });
            }
        }
        Ok(())
    };
    for line in text.lines() {
        if let Some(name) = line.trim().strip_prefix("-- name:") {
            flush(current.take(), out)?;
            current = Some((name.trim().to_string(), String::new()));
        } else if let Some((_, sql)) = current.as_mut() {
            if !line.trim_start().starts_with("--") {
                sql.push_str(line);
                sql.push('\n');
            }
        } else if !line.trim().is_empty() && !line.trim_start().starts_with("--") {
            return Err(QueryFileError::Orphan {
                file: file.to_string(),
            });
        }
    }
    flush(current, out)
}

/// All query texts by name.
pub struct Registry {
    by_name: HashMap<String, Entry>,
}

impl Registry {
    fn load() -> Result<Self, QueryFileError> {
        let mut by_name = HashMap::new();
        for (file, text) in FILES {
            split(file, text, &mut by_name)?;
        }
        for q in Query::ALL {
            if !by_name.contains_key(q.name()) {
                return Err(QueryFileError::Missing(q.name()));
            }
        }
        Ok(Self { by_name })
    }

    /// The registry compiled into the binary.
    pub fn get() -> Result<&'static Registry, &'static QueryFileError> {
        static REG: OnceLock<Result<Registry, QueryFileError>> = OnceLock::new();
        REG.get_or_init(Registry::load).as_ref()
    }

    pub fn sql(&self, q: Query) -> &str {
        self.by_name
            .get(q.name())
            .map(|e| e.sql.as_str())
            .unwrap_or("")
    }

    /// Queries prepared on every pooled connection.
    pub fn pooled(&self) -> impl Iterator<Item = Query> + '_ {
        Query::ALL
            .iter()
            .copied()
            .filter(|q| self.by_name.get(q.name()).is_some_and(|e| e.pooled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_has_text_and_every_file_is_compiled_in() {
        let reg = Registry::get().unwrap();
        for q in Query::ALL {
            assert!(!reg.sql(*q).is_empty(), "{}", q.name());
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/queries");
        for f in std::fs::read_dir(dir).unwrap() {
            let name = f.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".sql") {
                assert!(
                    FILES.iter().any(|(n, _)| *n == name),
                    "{name} is not listed in FILES"
                );
            }
        }
        assert!(reg.pooled().any(|q| q == Query::Ping));
        assert!(!reg.pooled().any(|q| q == Query::LockMigrations));
    }

    #[test]
    fn splits_on_name_markers() {
        let mut m = HashMap::new();
        split(
            "a.sql",
            "-- header\n\n-- name: A\nSELECT 1;\n-- a comment\n-- name: B\nSELECT\n  2;\n",
            &mut m,
        )
        .unwrap();
        assert_eq!(m["A"].sql, "SELECT 1");
        assert_eq!(m["B"].sql, "SELECT\n  2");
        assert!(split("b.sql", "-- name: A\nSELECT 1;\n", &mut m).is_err());
        assert!(split("c.sql", "SELECT 1;\n", &mut HashMap::new()).is_err());
    }
}
