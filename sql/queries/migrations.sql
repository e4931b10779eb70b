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
