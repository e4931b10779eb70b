-- Bookkeeping of schema migrations (run on a dedicated connection, not prepared in the pool).

-- name: CreateMigrationsTable
CREATE TABLE IF NOT EXISTS tianji_schema_migrations (
    version TEXT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- name: LockMigrations
SELECT pg_advisory_lock(7361620300120002);

-- name: UnlockMigrations
SELECT pg_advisory_unlock(7361620300120002);

-- name: AppliedMigrations
SELECT version FROM tianji_schema_migrations ORDER BY version;

-- name: RecordMigration
INSERT INTO tianji_schema_migrations (version) VALUES ($1);

-- Unique alias indexes, only while general_settings.enforce_unique_*_alias is on (LiteLLM lets
-- aliases repeat). Built and dropped under the migrations lock.

-- name: CreateTeamAliasIndex
CREATE UNIQUE INDEX IF NOT EXISTS "TianjiLLM_TeamTable_team_alias_key"
    ON "TianjiLLM_TeamTable" ("team_alias");

-- name: DropTeamAliasIndex
DROP INDEX IF EXISTS "TianjiLLM_TeamTable_team_alias_key";

-- name: CreateOrgAliasIndex
CREATE UNIQUE INDEX IF NOT EXISTS "TianjiLLM_OrganizationTable_organization_alias_key"
    ON "TianjiLLM_OrganizationTable" ("organization_alias");

-- name: DropOrgAliasIndex
DROP INDEX IF EXISTS "TianjiLLM_OrganizationTable_organization_alias_key";
