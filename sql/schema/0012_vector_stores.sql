-- Vector stores. "TianjiLLM_ManagedVectorStoreTable" and "TianjiLLM_ManagedVectorStoreIndexTable"
-- have LiteLLM's columns. A store's row: unified_resource_id is the id clients use (`vs_...`);
-- resource_object the OpenAI vector store object (name, metadata, expires_after, ...);
-- model_mappings where it lives: {"provider": "tianji", "embedding_model", "dimensions",
-- "owner": {key, user_id, team_id}} for the gateway's own stores, {"provider": "openai"|"azure",
-- "deployment_id", "vector_store_id"} for hosted ones.
CREATE TABLE IF NOT EXISTS "TianjiLLM_ManagedVectorStoreTable" (
    "id"                      TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "unified_resource_id"     TEXT NOT NULL UNIQUE,
    "resource_object"         JSONB,
    "model_mappings"          JSONB NOT NULL DEFAULT '{}'::jsonb,
    "flat_model_resource_ids" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "storage_backend"         TEXT,
    "storage_url"             TEXT,
    "created_at"              TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by"              TEXT,
    "team_id"                 TEXT,
    "updated_at"              TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_by"              TEXT
);
CREATE INDEX IF NOT EXISTS "TianjiLLM_ManagedVectorStoreTable_team_id_created_at_idx"
    ON "TianjiLLM_ManagedVectorStoreTable" ("team_id", "created_at" DESC);

-- Named indexes that keys and teams are granted (`allowed_vector_store_indexes`):
-- litellm_params.vector_store_index (or vector_store_id) names the store.
CREATE TABLE IF NOT EXISTS "TianjiLLM_ManagedVectorStoreIndexTable" (
    "id"             TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "index_name"     TEXT NOT NULL UNIQUE,
    "litellm_params" JSONB NOT NULL DEFAULT '{}'::jsonb,
    "index_info"     JSONB,
    "created_at"     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by"     TEXT,
    "updated_at"     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_by"     TEXT
);

-- The files of the gateway's own stores (Tianji's): status in_progress, completed, failed or
-- cancelled; a file's chunks are searchable only once it is completed.
CREATE TABLE IF NOT EXISTS "TianjiLLM_VectorStoreFileTable" (
    "vector_store_id"   TEXT NOT NULL REFERENCES "TianjiLLM_ManagedVectorStoreTable"("unified_resource_id") ON DELETE CASCADE,
    "file_id"           TEXT NOT NULL,
    "filename"          TEXT,
    "status"            TEXT NOT NULL DEFAULT 'in_progress',
    "last_error"        JSONB,
    "attributes"        JSONB NOT NULL DEFAULT '{}'::jsonb,
    "usage_bytes"       BIGINT NOT NULL DEFAULT 0,
    "chunking_strategy" JSONB,
    "batch_id"          TEXT,
    "created_at"        TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at"        TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY ("vector_store_id", "file_id")
);

-- Chunks of those files: the text and its embedding (little-endian f32s).
CREATE TABLE IF NOT EXISTS "TianjiLLM_VectorStoreChunkTable" (
    "chunk_id"        BIGSERIAL PRIMARY KEY,
    "vector_store_id" TEXT NOT NULL,
    "file_id"         TEXT NOT NULL,
    "seq"             INTEGER NOT NULL,
    "content"         TEXT NOT NULL,
    "embedding"       BYTEA NOT NULL,
    FOREIGN KEY ("vector_store_id", "file_id")
        REFERENCES "TianjiLLM_VectorStoreFileTable"("vector_store_id", "file_id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "TianjiLLM_VectorStoreChunkTable_file_idx"
    ON "TianjiLLM_VectorStoreChunkTable" ("vector_store_id", "file_id");

-- File batches of the gateway's own stores.
CREATE TABLE IF NOT EXISTS "TianjiLLM_VectorStoreFileBatchTable" (
    "batch_id"        TEXT PRIMARY KEY,
    "vector_store_id" TEXT NOT NULL REFERENCES "TianjiLLM_ManagedVectorStoreTable"("unified_resource_id") ON DELETE CASCADE,
    "status"          TEXT NOT NULL DEFAULT 'in_progress',
    "file_ids"        TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "created_at"      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at"      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
