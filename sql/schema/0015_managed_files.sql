-- 0015_managed_files.sql: files uploaded through the gateway (LiteLLM's
-- LiteLLM_ManagedFileTable, renamed). unified_file_id is the id the client got; model_mappings
-- maps each deployment holding the file ({deployment id: provider file id}): several for a file
-- sent to several deployments at once (`target_model_names`), one for a file uploaded to one
-- deployment or a batch's output file. flat_model_file_ids lists the provider ids (a provider's
-- id back to the client's); created_by / team_id are the owner, so a caller lists only its own
-- files, from any instance. storage_backend / storage_url are LiteLLM's (kept empty).
CREATE TABLE IF NOT EXISTS "TianjiLLM_ManagedFileTable" (
    "id"                  TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "unified_file_id"     TEXT NOT NULL UNIQUE,
    "file_object"         JSONB,
    "model_mappings"      JSONB NOT NULL,
    "flat_model_file_ids" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "storage_backend"     TEXT,
    "storage_url"         TEXT,
    "created_at"          TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by"          TEXT,
    "team_id"             TEXT,
    "updated_at"          TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_by"          TEXT
);
CREATE INDEX IF NOT EXISTS "TianjiLLM_ManagedFileTable_team_id_created_at_idx"
    ON "TianjiLLM_ManagedFileTable" ("team_id", "created_at" DESC);
CREATE INDEX IF NOT EXISTS "TianjiLLM_ManagedFileTable_flat_model_file_ids_idx"
    ON "TianjiLLM_ManagedFileTable" USING GIN ("flat_model_file_ids");
