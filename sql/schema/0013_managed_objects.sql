-- 0013_managed_objects.sql: objects a deployment holds for a caller that the gateway lists per
-- owner (videos, containers; batches and fine-tuning jobs later). LiteLLM's columns
-- (unified_object_id: the id the client got; model_object_id: the provider's id; file_object:
-- the object as last seen; file_purpose: what it is) plus the deployment holding it and its
-- owner, so a caller lists only its own objects, from any instance.
CREATE TABLE IF NOT EXISTS "TianjiLLM_ManagedObjectTable" (
    "id"                TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "unified_object_id" TEXT NOT NULL UNIQUE,
    "model_object_id"   TEXT NOT NULL,
    "file_object"       JSONB NOT NULL DEFAULT '{}'::jsonb,
    "file_purpose"      TEXT NOT NULL,
    "status"            TEXT,
    "created_at"        TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by"        TEXT,
    "updated_at"        TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_by"        TEXT
);
ALTER TABLE "TianjiLLM_ManagedObjectTable" ADD COLUMN IF NOT EXISTS "model_id" TEXT NOT NULL DEFAULT '';
ALTER TABLE "TianjiLLM_ManagedObjectTable" ADD COLUMN IF NOT EXISTS "model_group" TEXT NOT NULL DEFAULT '';
ALTER TABLE "TianjiLLM_ManagedObjectTable" ADD COLUMN IF NOT EXISTS "user_id" TEXT NOT NULL DEFAULT '';
ALTER TABLE "TianjiLLM_ManagedObjectTable" ADD COLUMN IF NOT EXISTS "team_id" TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS "TianjiLLM_ManagedObjectTable_model_object_idx"
    ON "TianjiLLM_ManagedObjectTable" ("model_id", "model_object_id");
CREATE INDEX IF NOT EXISTS "TianjiLLM_ManagedObjectTable_owner_idx"
    ON "TianjiLLM_ManagedObjectTable" ("file_purpose", "user_id", "team_id", "created_at" DESC);
