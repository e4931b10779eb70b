-- Router state kept in the database (LiteLLM 1.109.1's LiteLLM_Config and
-- LiteLLM_HealthCheckTable, with the TianjiLLM_ prefix).

-- Settings changed at run time: "router_settings" holds the router settings set through
-- PATCH /router/settings and the /fallback routes, applied over the config file's.
CREATE TABLE IF NOT EXISTS "TianjiLLM_Config" (
    "param_name"  TEXT PRIMARY KEY,
    "param_value" JSONB
);

-- One row per health check of a deployment.
CREATE TABLE IF NOT EXISTS "TianjiLLM_HealthCheckTable" (
    "health_check_id"  TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "model_name"       TEXT NOT NULL,
    "model_id"         TEXT,
    "status"           TEXT NOT NULL,
    "healthy_count"    INTEGER NOT NULL DEFAULT 0,
    "unhealthy_count"  INTEGER NOT NULL DEFAULT 0,
    "error_message"    TEXT,
    "response_time_ms" DOUBLE PRECISION,
    "details"          JSONB,
    "checked_by"       TEXT,
    "checked_at"       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_at"       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at"       TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS "TianjiLLM_HealthCheckTable_model_name_idx" ON "TianjiLLM_HealthCheckTable" ("model_name");
CREATE INDEX IF NOT EXISTS "TianjiLLM_HealthCheckTable_checked_at_idx" ON "TianjiLLM_HealthCheckTable" ("checked_at");
CREATE INDEX IF NOT EXISTS "TianjiLLM_HealthCheckTable_status_idx" ON "TianjiLLM_HealthCheckTable" ("status");
