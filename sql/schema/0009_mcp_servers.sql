-- 0009_mcp_servers.sql: upstream MCP servers registered through /v1/mcp/server (LiteLLM's
-- LiteLLM_MCPServerTable, with the TianjiLLM_ prefix). `credentials` and the values of
-- `static_headers` are sealed at rest like model credentials. Served from the in-process set
-- of `crate::mcp` (with the config's `mcp_servers`), reloaded on every instance through the
-- invalidation channel. Names are unique (they prefix tool names).
CREATE TABLE IF NOT EXISTS "TianjiLLM_MCPServerTable" (
    "server_id"                    TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "server_name"                  TEXT,
    "alias"                        TEXT,
    "description"                  TEXT,
    "instructions"                 TEXT,
    "url"                          TEXT,
    "spec_path"                    TEXT,
    "transport"                    TEXT NOT NULL DEFAULT 'sse',
    "auth_type"                    TEXT,
    "credentials"                  JSONB DEFAULT '{}'::jsonb,
    "created_at"                   TIMESTAMP(3) DEFAULT now(),
    "created_by"                   TEXT,
    "updated_at"                   TIMESTAMP(3) DEFAULT now(),
    "updated_by"                   TEXT,
    "mcp_info"                     JSONB DEFAULT '{}'::jsonb,
    "mcp_access_groups"            TEXT[] DEFAULT ARRAY[]::TEXT[],
    "allowed_tools"                TEXT[] DEFAULT ARRAY[]::TEXT[],
    "tool_name_to_display_name"    JSONB DEFAULT '{}'::jsonb,
    "tool_name_to_description"     JSONB DEFAULT '{}'::jsonb,
    "extra_headers"                TEXT[] DEFAULT ARRAY[]::TEXT[],
    "static_headers"               JSONB DEFAULT '{}'::jsonb,
    "status"                       TEXT DEFAULT 'unknown',
    "last_health_check"            TIMESTAMP(3),
    "health_check_error"           TEXT,
    "command"                      TEXT,
    "args"                         TEXT[] DEFAULT ARRAY[]::TEXT[],
    "env"                          JSONB DEFAULT '{}'::jsonb,
    "authorization_url"            TEXT,
    "token_url"                    TEXT,
    "registration_url"             TEXT,
    "allow_all_keys"               BOOLEAN NOT NULL DEFAULT false,
    "available_on_public_internet" BOOLEAN NOT NULL DEFAULT true,
    "delegate_auth_to_upstream"    BOOLEAN NOT NULL DEFAULT false,
    "is_byok"                      BOOLEAN NOT NULL DEFAULT false,
    "byok_description"             TEXT[] DEFAULT ARRAY[]::TEXT[],
    "byok_api_key_help_url"        TEXT,
    "source_url"                   TEXT,
    "approval_status"              TEXT DEFAULT 'active',
    "submitted_by"                 TEXT,
    "submitted_at"                 TIMESTAMP(3),
    "reviewed_at"                  TIMESTAMP(3),
    "review_notes"                 TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS "TianjiLLM_MCPServerTable_server_name_key"
    ON "TianjiLLM_MCPServerTable" ("server_name");
CREATE INDEX IF NOT EXISTS "TianjiLLM_MCPServerTable_approval_status_idx"
    ON "TianjiLLM_MCPServerTable" ("approval_status");
