-- 0007_agent_spend.sql: spend per A2A agent per day (LiteLLM's LiteLLM_DailyAgentSpend, with
-- the TianjiLLM_ prefix and LiteLLM's columns), upserted by the spend writer with the other
-- daily tables and read by /agent/daily/activity.
CREATE TABLE IF NOT EXISTS "TianjiLLM_DailyAgentSpend" (
    "id"                                     TEXT NOT NULL DEFAULT gen_random_uuid()::text,
    "agent_id"                               TEXT,
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

    CONSTRAINT "TianjiLLM_DailyAgentSpend_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX IF NOT EXISTS "TianjiLLM_DailyAgentSpend_agent_id_date_key"
    ON "TianjiLLM_DailyAgentSpend" ("agent_id", "date", "api_key", "model", "custom_llm_provider", "mcp_namespaced_tool_name", "endpoint");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyAgentSpend_date_idx" ON "TianjiLLM_DailyAgentSpend" ("date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyAgentSpend_agent_id_date_idx" ON "TianjiLLM_DailyAgentSpend" ("agent_id", "date");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyAgentSpend_api_key_idx" ON "TianjiLLM_DailyAgentSpend" ("api_key");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyAgentSpend_model_idx" ON "TianjiLLM_DailyAgentSpend" ("model");
CREATE INDEX IF NOT EXISTS "TianjiLLM_DailyAgentSpend_endpoint_idx" ON "TianjiLLM_DailyAgentSpend" ("endpoint");
