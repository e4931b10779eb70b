-- 0002_spend.sql: spend accounting tables: the per-request SpendLogs, the daily aggregates per
-- user, team, organisation, end user and tag, and TagTable (tag spend roll-up).
--
-- Mirrors the same LiteLLM Prisma schema as 0001 (models LiteLLM_SpendLogs,
-- LiteLLM_Daily{User,Team,Tag,Organization,EndUser}Spend, LiteLLM_TagTable), with the same
-- renames (`LiteLLM_X` -> `TianjiLLM_X`) and the same type mapping. Column names are LiteLLM's,
-- `litellm_call_id` included.
--
-- Differences from the Prisma schema:
--   * The gateway writes '' rather than NULL into the nullable columns of the daily tables'
--     unique keys (model, model_group, custom_llm_provider, mcp_namespaced_tool_name, endpoint),
--     so that `INSERT ... ON CONFLICT` finds the row (NULLs never conflict in Postgres).
--
-- Idempotent: it runs inside one transaction and can be applied repeatedly.

-- ---------------------------------------------------------------------------
-- TianjiLLM_SpendLogs: one row per LLM request, success or failure.
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS "TianjiLLM_SpendLogs" (
    "request_id"               TEXT NOT NULL,
    "call_type"                TEXT NOT NULL,
    "api_key"                  TEXT NOT NULL DEFAULT '',
    "spend"                    DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "total_tokens"             INTEGER NOT NULL DEFAULT 0,
    "prompt_tokens"            INTEGER NOT NULL DEFAULT 0,
    "completion_tokens"        INTEGER NOT NULL DEFAULT 0,
    "startTime"                TIMESTAMP(3) NOT NULL,
    "endTime"                  TIMESTAMP(3) NOT NULL,
    "request_duration_ms"      INTEGER,
    "completionStartTime"      TIMESTAMP(3),
    "model"                    TEXT NOT NULL DEFAULT '',
    "model_id"                 TEXT DEFAULT '',
    "model_group"              TEXT DEFAULT '',
    "custom_llm_provider"      TEXT DEFAULT '',
    "api_base"                 TEXT DEFAULT '',
    "user"                     TEXT DEFAULT '',
    "metadata"                 JSONB DEFAULT '{}',
    "cache_hit"                TEXT DEFAULT '',
    "cache_key"                TEXT DEFAULT '',
    "request_tags"             JSONB DEFAULT '[]',
    "team_id"                  TEXT,
    "organization_id"          TEXT,
    "end_user"                 TEXT,
    "requester_ip_address"     TEXT,
    "messages"                 JSONB DEFAULT '{}',
    "response"                 JSONB DEFAULT '{}',
    "session_id"               TEXT,
    "status"                   TEXT,
    "mcp_namespaced_tool_name" TEXT,
    "billing_agent_id"         TEXT,
    "agent_id"                 TEXT,
    "proxy_server_request"     JSONB DEFAULT '{}',
    "litellm_call_id"          TEXT,
    "created_at"               TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at"               TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TianjiLLM_SpendLogs_pkey" PRIMARY KEY ("request_id")
);
CREATE INDEX IF NOT EXISTS "TianjiLLM_SpendLogs_startTime_idx" ON "TianjiLLM_SpendLogs" ("startTime");
CREATE INDEX IF NOT EXISTS "TianjiLLM_SpendLogs_startTime_request_id_idx" ON "TianjiLLM_SpendLogs" ("startTime", "request_id");
CREATE INDEX IF NOT EXISTS "TianjiLLM_SpendLogs_end_user_idx" ON "TianjiLLM_SpendLogs" ("end_user");
CREATE INDEX IF NOT EXISTS "TianjiLLM_SpendLogs_session_id_idx" ON "TianjiLLM_SpendLogs" ("session_id");
CREATE INDEX IF NOT EXISTS "TianjiLLM_SpendLogs_litellm_call_id_idx" ON "TianjiLLM_SpendLogs" ("litellm_call_id");
CREATE INDEX IF NOT EXISTS "TianjiLLM_SpendLogs_api_key_startTime_idx" ON "TianjiLLM_SpendLogs" ("api_key", "startTime");

-- ---------------------------------------------------------------------------
-- TianjiLLM_TagTable
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS "TianjiLLM_TagTable" (
    "tag_name"    TEXT NOT NULL,
    "description" TEXT,
    "models"      TEXT[],
    "model_info"  JSONB,
    "spend"       DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "budget_id"   TEXT,
    "created_at"  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by"  TEXT,
    "updated_at"  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TianjiLLM_TagTable_pkey" PRIMARY KEY ("tag_name"),
    CONSTRAINT "TianjiLLM_TagTable_budget_id_fkey"
        FOREIGN KEY ("budget_id") REFERENCES "TianjiLLM_BudgetTable"("budget_id")
        ON DELETE SET NULL ON UPDATE CASCADE
);

-- ---------------------------------------------------------------------------
-- TianjiLLM_DailyUserSpend
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS "TianjiLLM_DailyUserSpend" (
    "id"                                     TEXT NOT NULL DEFAULT gen_random_uuid()::text,
    "user_id" TEXT,
    "date"                                   TEXT NOT NULL,
    "api_key"                                TEXT NOT NULL,
    "model"                                  TEXT,
    "model_group"                            TEXT,
    "custom_llm_provider"                    TEXT,
    "mcp_namespaced_tool_name"               TEXT,
    "endpoint"                               TEXT,
    "prompt_tokens"                          BIGINT NOT NULL DEFAULT 0,
    "completion_tokens"                      BIGINT NOT NULL DEFAULT 0,
    "cache_read_input_tokens"                BIGINT NOT NULL DEFAULT 0,
    "cache_creation_input_tokens"            BIGINT NOT NULL DEFAULT 0,
    "compression_saved_tokens"               BIGINT NOT NULL DEFAULT 0,
    "compression_savings_spend"              DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "prompt_caching_savings_spend"           DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "gateway_injected_caching_savings_spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "autorouter_savings_spend"               DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "spend"                                  DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "api_requests"                           BIGINT NOT NULL DEFAULT 0,
    "successful_requests"                    BIGINT NOT NULL DEFAULT 0,
    "failed_requests"                        BIGINT NOT NULL DEFAULT 0,
    "total_response_time_ms"                 BIGINT NOT NULL DEFAULT 0,
    "timed_requests"                         BIGINT NOT NULL DEFAULT 0,
    "created_at"                             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at"                             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TianjiLLM_DailyUserSpend_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX IF NOT EXISTS "TianjiLLM_DailyUserSpend_user_id_date_key"
    ON "TianjiLLM_DailyUserSpend" ("user_id", "date", "api_key", "model", "custom_llm_provider", "mcp_namespaced_tool_name", "endpoint");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyUserSpend_date_idx" ON "TianjiLLM_DailyUserSpend" ("date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyUserSpend_user_id_date_idx" ON "TianjiLLM_DailyUserSpend" ("user_id", "date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyUserSpend_api_key_idx" ON "TianjiLLM_DailyUserSpend" ("api_key");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyUserSpend_model_idx" ON "TianjiLLM_DailyUserSpend" ("model");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyUserSpend_mcp_namespaced_tool_name_idx" ON "TianjiLLM_DailyUserSpend" ("mcp_namespaced_tool_name");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyUserSpend_endpoint_idx" ON "TianjiLLM_DailyUserSpend" ("endpoint");

-- ---------------------------------------------------------------------------
-- TianjiLLM_DailyTeamSpend
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS "TianjiLLM_DailyTeamSpend" (
    "id"                                     TEXT NOT NULL DEFAULT gen_random_uuid()::text,
    "team_id" TEXT,
    "date"                                   TEXT NOT NULL,
    "api_key"                                TEXT NOT NULL,
    "model"                                  TEXT,
    "model_group"                            TEXT,
    "custom_llm_provider"                    TEXT,
    "mcp_namespaced_tool_name"               TEXT,
    "endpoint"                               TEXT,
    "prompt_tokens"                          BIGINT NOT NULL DEFAULT 0,
    "completion_tokens"                      BIGINT NOT NULL DEFAULT 0,
    "cache_read_input_tokens"                BIGINT NOT NULL DEFAULT 0,
    "cache_creation_input_tokens"            BIGINT NOT NULL DEFAULT 0,
    "compression_saved_tokens"               BIGINT NOT NULL DEFAULT 0,
    "compression_savings_spend"              DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "prompt_caching_savings_spend"           DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "gateway_injected_caching_savings_spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "autorouter_savings_spend"               DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "spend"                                  DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "api_requests"                           BIGINT NOT NULL DEFAULT 0,
    "successful_requests"                    BIGINT NOT NULL DEFAULT 0,
    "failed_requests"                        BIGINT NOT NULL DEFAULT 0,
    "total_response_time_ms"                 BIGINT NOT NULL DEFAULT 0,
    "timed_requests"                         BIGINT NOT NULL DEFAULT 0,
    "ptu_flat_cost"                          DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "created_at"                             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at"                             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TianjiLLM_DailyTeamSpend_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX IF NOT EXISTS "TianjiLLM_DailyTeamSpend_team_id_date_key"
    ON "TianjiLLM_DailyTeamSpend" ("team_id", "date", "api_key", "model", "custom_llm_provider", "mcp_namespaced_tool_name", "endpoint");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTeamSpend_date_idx" ON "TianjiLLM_DailyTeamSpend" ("date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTeamSpend_team_id_date_idx" ON "TianjiLLM_DailyTeamSpend" ("team_id", "date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTeamSpend_api_key_idx" ON "TianjiLLM_DailyTeamSpend" ("api_key");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTeamSpend_model_idx" ON "TianjiLLM_DailyTeamSpend" ("model");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTeamSpend_mcp_namespaced_tool_name_idx" ON "TianjiLLM_DailyTeamSpend" ("mcp_namespaced_tool_name");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTeamSpend_endpoint_idx" ON "TianjiLLM_DailyTeamSpend" ("endpoint");

-- ---------------------------------------------------------------------------
-- TianjiLLM_DailyOrganizationSpend
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS "TianjiLLM_DailyOrganizationSpend" (
    "id"                                     TEXT NOT NULL DEFAULT gen_random_uuid()::text,
    "organization_id" TEXT,
    "date"                                   TEXT NOT NULL,
    "api_key"                                TEXT NOT NULL,
    "model"                                  TEXT,
    "model_group"                            TEXT,
    "custom_llm_provider"                    TEXT,
    "mcp_namespaced_tool_name"               TEXT,
    "endpoint"                               TEXT,
    "prompt_tokens"                          BIGINT NOT NULL DEFAULT 0,
    "completion_tokens"                      BIGINT NOT NULL DEFAULT 0,
    "cache_read_input_tokens"                BIGINT NOT NULL DEFAULT 0,
    "cache_creation_input_tokens"            BIGINT NOT NULL DEFAULT 0,
    "compression_saved_tokens"               BIGINT NOT NULL DEFAULT 0,
    "compression_savings_spend"              DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "prompt_caching_savings_spend"           DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "gateway_injected_caching_savings_spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "autorouter_savings_spend"               DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "spend"                                  DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "api_requests"                           BIGINT NOT NULL DEFAULT 0,
    "successful_requests"                    BIGINT NOT NULL DEFAULT 0,
    "failed_requests"                        BIGINT NOT NULL DEFAULT 0,
    "total_response_time_ms"                 BIGINT NOT NULL DEFAULT 0,
    "timed_requests"                         BIGINT NOT NULL DEFAULT 0,
    "created_at"                             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at"                             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TianjiLLM_DailyOrganizationSpend_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX IF NOT EXISTS "TianjiLLM_DailyOrganizationSpend_organization_id_date_key"
    ON "TianjiLLM_DailyOrganizationSpend" ("organization_id", "date", "api_key", "model", "custom_llm_provider", "mcp_namespaced_tool_name", "endpoint");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyOrganizationSpend_date_idx" ON "TianjiLLM_DailyOrganizationSpend" ("date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyOrganizationSpend_organization_id_date_idx" ON "TianjiLLM_DailyOrganizationSpend" ("organization_id", "date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyOrganizationSpend_api_key_idx" ON "TianjiLLM_DailyOrganizationSpend" ("api_key");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyOrganizationSpend_model_idx" ON "TianjiLLM_DailyOrganizationSpend" ("model");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyOrganizationSpend_mcp_namespaced_tool_name_idx" ON "TianjiLLM_DailyOrganizationSpend" ("mcp_namespaced_tool_name");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyOrganizationSpend_endpoint_idx" ON "TianjiLLM_DailyOrganizationSpend" ("endpoint");

-- ---------------------------------------------------------------------------
-- TianjiLLM_DailyEndUserSpend
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS "TianjiLLM_DailyEndUserSpend" (
    "id"                                     TEXT NOT NULL DEFAULT gen_random_uuid()::text,
    "end_user_id" TEXT,
    "date"                                   TEXT NOT NULL,
    "api_key"                                TEXT NOT NULL,
    "model"                                  TEXT,
    "model_group"                            TEXT,
    "custom_llm_provider"                    TEXT,
    "mcp_namespaced_tool_name"               TEXT,
    "endpoint"                               TEXT,
    "prompt_tokens"                          BIGINT NOT NULL DEFAULT 0,
    "completion_tokens"                      BIGINT NOT NULL DEFAULT 0,
    "cache_read_input_tokens"                BIGINT NOT NULL DEFAULT 0,
    "cache_creation_input_tokens"            BIGINT NOT NULL DEFAULT 0,
    "compression_saved_tokens"               BIGINT NOT NULL DEFAULT 0,
    "compression_savings_spend"              DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "prompt_caching_savings_spend"           DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "gateway_injected_caching_savings_spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "autorouter_savings_spend"               DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "spend"                                  DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "api_requests"                           BIGINT NOT NULL DEFAULT 0,
    "successful_requests"                    BIGINT NOT NULL DEFAULT 0,
    "failed_requests"                        BIGINT NOT NULL DEFAULT 0,
    "total_response_time_ms"                 BIGINT NOT NULL DEFAULT 0,
    "timed_requests"                         BIGINT NOT NULL DEFAULT 0,
    "created_at"                             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at"                             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TianjiLLM_DailyEndUserSpend_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX IF NOT EXISTS "TianjiLLM_DailyEndUserSpend_end_user_id_date_key"
    ON "TianjiLLM_DailyEndUserSpend" ("end_user_id", "date", "api_key", "model", "custom_llm_provider", "mcp_namespaced_tool_name", "endpoint");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyEndUserSpend_date_idx" ON "TianjiLLM_DailyEndUserSpend" ("date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyEndUserSpend_end_user_id_date_idx" ON "TianjiLLM_DailyEndUserSpend" ("end_user_id", "date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyEndUserSpend_api_key_idx" ON "TianjiLLM_DailyEndUserSpend" ("api_key");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyEndUserSpend_model_idx" ON "TianjiLLM_DailyEndUserSpend" ("model");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyEndUserSpend_mcp_namespaced_tool_name_idx" ON "TianjiLLM_DailyEndUserSpend" ("mcp_namespaced_tool_name");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyEndUserSpend_endpoint_idx" ON "TianjiLLM_DailyEndUserSpend" ("endpoint");

-- ---------------------------------------------------------------------------
-- TianjiLLM_DailyTagSpend
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS "TianjiLLM_DailyTagSpend" (
    "id"                                     TEXT NOT NULL DEFAULT gen_random_uuid()::text,
    "request_id" TEXT,
    "tag" TEXT,
    "date"                                   TEXT NOT NULL,
    "api_key"                                TEXT NOT NULL,
    "model"                                  TEXT,
    "model_group"                            TEXT,
    "custom_llm_provider"                    TEXT,
    "mcp_namespaced_tool_name"               TEXT,
    "endpoint"                               TEXT,
    "prompt_tokens"                          BIGINT NOT NULL DEFAULT 0,
    "completion_tokens"                      BIGINT NOT NULL DEFAULT 0,
    "cache_read_input_tokens"                BIGINT NOT NULL DEFAULT 0,
    "cache_creation_input_tokens"            BIGINT NOT NULL DEFAULT 0,
    "compression_saved_tokens"               BIGINT NOT NULL DEFAULT 0,
    "compression_savings_spend"              DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "prompt_caching_savings_spend"           DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "gateway_injected_caching_savings_spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "autorouter_savings_spend"               DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "spend"                                  DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "api_requests"                           BIGINT NOT NULL DEFAULT 0,
    "successful_requests"                    BIGINT NOT NULL DEFAULT 0,
    "failed_requests"                        BIGINT NOT NULL DEFAULT 0,
    "total_response_time_ms"                 BIGINT NOT NULL DEFAULT 0,
    "timed_requests"                         BIGINT NOT NULL DEFAULT 0,
    "created_at"                             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at"                             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TianjiLLM_DailyTagSpend_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX IF NOT EXISTS "TianjiLLM_DailyTagSpend_tag_date_key"
    ON "TianjiLLM_DailyTagSpend" ("tag", "date", "api_key", "model", "custom_llm_provider", "mcp_namespaced_tool_name", "endpoint");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTagSpend_date_idx" ON "TianjiLLM_DailyTagSpend" ("date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTagSpend_tag_date_idx" ON "TianjiLLM_DailyTagSpend" ("tag", "date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTagSpend_api_key_idx" ON "TianjiLLM_DailyTagSpend" ("api_key");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTagSpend_model_idx" ON "TianjiLLM_DailyTagSpend" ("model");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTagSpend_mcp_namespaced_tool_name_idx" ON "TianjiLLM_DailyTagSpend" ("mcp_namespaced_tool_name");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyTagSpend_endpoint_idx" ON "TianjiLLM_DailyTagSpend" ("endpoint");

-- ---------------------------------------------------------------------------
-- tianji_duration_secs(d): seconds of a LiteLLM duration ('30s', '10m', '24h', '7d', '2w',
-- '1mo' = 30 days), NULL when malformed. Used by the budget reset job. Not part of LiteLLM's
-- schema.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION tianji_duration_secs(d TEXT)
RETURNS DOUBLE PRECISION
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT m[1]::double precision * CASE m[2]
        WHEN 's' THEN 1 WHEN 'm' THEN 60 WHEN 'h' THEN 3600 WHEN 'd' THEN 86400
        WHEN 'w' THEN 604800 WHEN 'mo' THEN 2592000 END
    FROM regexp_match(btrim(d), '^([0-9]+)(mo|s|m|h|d|w)$') AS m
$fn$;
