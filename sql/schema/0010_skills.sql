-- Skills (LiteLLM's "LiteLLM_SkillsTable" columns): one row per skill, the latest version's
-- archive in file_content. metadata: where the skill lives (backend, deployment_id, model,
-- the provider's id), its owner (user_id, team_id, key) and the archive's name and digest.
CREATE TABLE IF NOT EXISTS "TianjiLLM_SkillsTable" (
    "skill_id"       TEXT PRIMARY KEY,
    "display_title"  TEXT,
    "description"    TEXT,
    "instructions"   TEXT,
    "source"         TEXT NOT NULL DEFAULT 'custom',
    "latest_version" TEXT,
    "file_content"   BYTEA,
    "file_name"      TEXT,
    "file_type"      TEXT,
    "metadata"       JSONB DEFAULT '{}'::jsonb,
    "created_at"     TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    "created_by"     TEXT,
    "updated_at"     TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    "updated_by"     TEXT
);

-- Every version of a skill (the gateway's own: LiteLLM keeps only the latest).
CREATE TABLE IF NOT EXISTS "TianjiLLM_SkillVersionTable" (
    "skill_id"     TEXT NOT NULL REFERENCES "TianjiLLM_SkillsTable"("skill_id") ON DELETE CASCADE,
    "version"      TEXT NOT NULL,
    "name"         TEXT,
    "description"  TEXT,
    "directory"    TEXT,
    "file_content" BYTEA,
    "digest"       TEXT,
    "created_at"   TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    "created_by"   TEXT,
    PRIMARY KEY ("skill_id", "version")
);
