-- 0008_claude_code_plugins.sql: the Claude Code plugin marketplace (LiteLLM's
-- LiteLLM_ClaudeCodePluginTable, with the TianjiLLM_ prefix). `manifest_json` keeps the plugin's
-- catalogue entry fields (author, homepage, keywords, category, domain, namespace,
-- installation_preference); `source` is the source object Claude Code reads.
CREATE TABLE IF NOT EXISTS "TianjiLLM_ClaudeCodePluginTable" (
    "id"            TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "name"          TEXT NOT NULL,
    "version"       TEXT NOT NULL DEFAULT '1.0.0',
    "description"   TEXT,
    "manifest_json" JSONB NOT NULL DEFAULT '{}'::jsonb,
    "files_json"    JSONB,
    "enabled"       BOOLEAN NOT NULL DEFAULT true,
    "source"        JSONB NOT NULL,
    "source_url"    TEXT,
    "created_at"    TIMESTAMP(3) NOT NULL DEFAULT now(),
    "updated_at"    TIMESTAMP(3) NOT NULL DEFAULT now(),
    "created_by"    TEXT,
    CONSTRAINT "TianjiLLM_ClaudeCodePluginTable_name_key" UNIQUE ("name")
);
