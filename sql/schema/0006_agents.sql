-- 0006_agents.sql: A2A agents (LiteLLM's LiteLLM_AgentsTable, with the TianjiLLM_ prefix;
-- `litellm_params` is `tianji_params` as in the model table). Served from an in-process registry
-- (`crate::agents`), reloaded on every instance through the invalidation channel.
CREATE TABLE IF NOT EXISTS "TianjiLLM_AgentsTable" (
    "agent_id"             TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "agent_name"           TEXT NOT NULL,
    "tianji_params"        JSONB,
    "agent_card_params"    JSONB NOT NULL DEFAULT '{}'::jsonb,
    "static_headers"       JSONB,
    "extra_headers"        TEXT[] DEFAULT ARRAY[]::TEXT[],
    "kill_switch"          JSONB,
    "agent_access_groups"  TEXT[] DEFAULT ARRAY[]::TEXT[],
    "access_group_ids"     TEXT[] DEFAULT ARRAY[]::TEXT[],
    "object_permission_id" TEXT,
    "spend"                DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "identity"             JSONB,
    "identity_managed"     BOOLEAN NOT NULL DEFAULT false,
    "enabled"              BOOLEAN NOT NULL DEFAULT true,
    "execution_mode"       TEXT NOT NULL DEFAULT 'autonomous',
    "tpm_limit"            BIGINT,
    "rpm_limit"            BIGINT,
    "session_tpm_limit"    BIGINT,
    "session_rpm_limit"    BIGINT,
    "created_at"           TIMESTAMP(3) NOT NULL DEFAULT now(),
    "created_by"           TEXT NOT NULL,
    "updated_at"           TIMESTAMP(3) NOT NULL DEFAULT now(),
    "updated_by"           TEXT NOT NULL,
    CONSTRAINT "TianjiLLM_AgentsTable_agent_name_key" UNIQUE ("agent_name"),
    CONSTRAINT "TianjiLLM_AgentsTable_object_permission_id_fkey"
        FOREIGN KEY ("object_permission_id") REFERENCES "TianjiLLM_ObjectPermissionTable" ("object_permission_id")
        ON DELETE SET NULL ON UPDATE CASCADE
);
