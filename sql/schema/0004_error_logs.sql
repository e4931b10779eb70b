-- 0004_error_logs.sql: failed LLM requests (LiteLLM's LiteLLM_ErrorLogs, with the TianjiLLM_
-- prefix and LiteLLM's column names), one row per failure, written by the spend writer in the
-- transaction of its batch.
CREATE TABLE IF NOT EXISTS "TianjiLLM_ErrorLogs" (
    "request_id"         TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "startTime"          TIMESTAMP(3) NOT NULL,
    "endTime"            TIMESTAMP(3) NOT NULL,
    "api_base"           TEXT NOT NULL DEFAULT '',
    "model_group"        TEXT NOT NULL DEFAULT '',
    "litellm_model_name" TEXT NOT NULL DEFAULT '',
    "model_id"           TEXT NOT NULL DEFAULT '',
    "request_kwargs"     JSONB NOT NULL DEFAULT '{}',
    "exception_type"     TEXT NOT NULL DEFAULT '',
    "exception_string"   TEXT NOT NULL DEFAULT '',
    "status_code"        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS "TianjiLLM_ErrorLogs_startTime_idx" ON "TianjiLLM_ErrorLogs" ("startTime");
