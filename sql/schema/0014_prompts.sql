-- 0014_prompts.sql: prompt templates (LiteLLM's LiteLLM_PromptTable, with the TianjiLLM_ prefix;
-- `litellm_params` is `tianji_params`). One row per version of a prompt: creating a prompt whose
-- id exists, or replacing it, adds the next version. Served from an in-process registry
-- (`crate::prompts`), reloaded on every instance through the invalidation channel.
CREATE TABLE IF NOT EXISTS "TianjiLLM_PromptTable" (
    "id"            TEXT NOT NULL DEFAULT gen_random_uuid()::text,
    "prompt_id"     TEXT NOT NULL,
    "version"       INTEGER NOT NULL DEFAULT 1,
    "tianji_params" JSONB NOT NULL,
    "prompt_info"   JSONB,
    "created_at"    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at"    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "TianjiLLM_PromptTable_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX IF NOT EXISTS "TianjiLLM_PromptTable_prompt_id_version_key"
    ON "TianjiLLM_PromptTable" ("prompt_id", "version");
CREATE INDEX IF NOT EXISTS "TianjiLLM_PromptTable_prompt_id_idx"
    ON "TianjiLLM_PromptTable" ("prompt_id");
