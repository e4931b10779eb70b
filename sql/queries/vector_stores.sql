-- Vector stores ("TianjiLLM_ManagedVectorStoreTable" and the gateway's own stores' files, chunks
-- and file batches). Store rows travel as JSON.

-- name: InsertVectorStore
-- $1 id, $2 resource_object, $3 model_mappings, $4 flat provider ids, $5 created_by, $6 team_id
INSERT INTO "TianjiLLM_ManagedVectorStoreTable" AS t
    ("unified_resource_id", "resource_object", "model_mappings", "flat_model_resource_ids",
     "created_by", "updated_by", "team_id")
VALUES ($1, $2, $3, $4, $5, $5, NULLIF($6, ''))
RETURNING to_jsonb(t);

-- name: GetVectorStore
SELECT to_jsonb(t) FROM "TianjiLLM_ManagedVectorStoreTable" t WHERE t."unified_resource_id" = $1;

-- name: ListVectorStores
SELECT to_jsonb(t) FROM "TianjiLLM_ManagedVectorStoreTable" t ORDER BY t."created_at", t."unified_resource_id";

-- name: EmbeddedVectorStores
-- The gateway's own stores: their ids.
SELECT t."unified_resource_id" FROM "TianjiLLM_ManagedVectorStoreTable" t
WHERE t."model_mappings"->>'provider' = 'tianji';

-- name: UpdateVectorStoreObject
-- $1 id, $2 resource_object, $3 updated_by
UPDATE "TianjiLLM_ManagedVectorStoreTable" t
SET "resource_object" = $2, "updated_by" = $3, "updated_at" = now()::timestamp(3)
WHERE t."unified_resource_id" = $1
RETURNING to_jsonb(t);

-- name: SetVectorStoreDimensions
-- $1 id, $2 dimensions: recorded once; returns the store's dimensions (the first recorded).
UPDATE "TianjiLLM_ManagedVectorStoreTable" t
SET "model_mappings" = CASE WHEN t."model_mappings" ? 'dimensions' THEN t."model_mappings"
                            ELSE t."model_mappings" || jsonb_build_object('dimensions', $2::int) END
WHERE t."unified_resource_id" = $1
RETURNING (t."model_mappings"->>'dimensions')::int;

-- name: DeleteVectorStore
DELETE FROM "TianjiLLM_ManagedVectorStoreTable" t WHERE t."unified_resource_id" = $1
RETURNING to_jsonb(t);

-- name: GetVectorStoreIndex
SELECT to_jsonb(i) FROM "TianjiLLM_ManagedVectorStoreIndexTable" i WHERE i."index_name" = $1;

-- name: VectorStoreCounts
-- $1 id: files per status and the bytes of the completed ones.
SELECT f."status", count(*)::bigint, COALESCE(sum(f."usage_bytes"), 0)::bigint
FROM "TianjiLLM_VectorStoreFileTable" f WHERE f."vector_store_id" = $1 GROUP BY f."status";

-- name: InsertVectorStoreFile
-- $1 store, $2 file id, $3 filename, $4 attributes, $5 chunking_strategy, $6 batch id: nothing
-- when the store already holds the file.
INSERT INTO "TianjiLLM_VectorStoreFileTable" AS f
    ("vector_store_id", "file_id", "filename", "attributes", "chunking_strategy", "batch_id")
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT ("vector_store_id", "file_id") DO NOTHING
RETURNING to_jsonb(f);

-- name: GetVectorStoreFile
SELECT to_jsonb(f) FROM "TianjiLLM_VectorStoreFileTable" f
WHERE f."vector_store_id" = $1 AND f."file_id" = $2;

-- name: ListVectorStoreFiles
SELECT to_jsonb(f) FROM "TianjiLLM_VectorStoreFileTable" f
WHERE f."vector_store_id" = $1 ORDER BY f."created_at", f."file_id";

-- name: SetVectorStoreFileFilename
UPDATE "TianjiLLM_VectorStoreFileTable" f SET "filename" = $3, "updated_at" = now()::timestamp(3)
WHERE f."vector_store_id" = $1 AND f."file_id" = $2;

-- name: FinishVectorStoreFile
-- $1 store, $2 file, $3 status, $4 last_error, $5 usage_bytes: only a file still in progress.
UPDATE "TianjiLLM_VectorStoreFileTable" f
SET "status" = $3, "last_error" = $4, "usage_bytes" = $5, "updated_at" = now()::timestamp(3)
WHERE f."vector_store_id" = $1 AND f."file_id" = $2 AND f."status" = 'in_progress'
RETURNING to_jsonb(f);

-- name: SetVectorStoreFileAttributes
UPDATE "TianjiLLM_VectorStoreFileTable" f
SET "attributes" = $3, "updated_at" = now()::timestamp(3)
WHERE f."vector_store_id" = $1 AND f."file_id" = $2
RETURNING to_jsonb(f);

-- name: DeleteVectorStoreFile
DELETE FROM "TianjiLLM_VectorStoreFileTable" f
WHERE f."vector_store_id" = $1 AND f."file_id" = $2
RETURNING to_jsonb(f);

-- name: InsertVectorStoreChunks
-- $1 store, $2 file, $3 seq[], $4 content[], $5 embedding[] (one row per element)
INSERT INTO "TianjiLLM_VectorStoreChunkTable" ("vector_store_id", "file_id", "seq", "content", "embedding")
SELECT $1, $2, c.seq, c.content, c.embedding
FROM unnest($3::int[], $4::text[], $5::bytea[]) AS c(seq, content, embedding)
RETURNING "chunk_id";

-- name: DeleteVectorStoreFileChunks
DELETE FROM "TianjiLLM_VectorStoreChunkTable" c WHERE c."vector_store_id" = $1 AND c."file_id" = $2;

-- name: LoadVectorStoreChunks
-- $1 store, $2 file ids: every chunk's id, file and embedding.
SELECT c."chunk_id", c."file_id", c."embedding" FROM "TianjiLLM_VectorStoreChunkTable" c
WHERE c."vector_store_id" = $1 AND c."file_id" = ANY($2);

-- name: GetVectorStoreChunks
-- $1 chunk ids
SELECT c."chunk_id", c."file_id", c."content" FROM "TianjiLLM_VectorStoreChunkTable" c
WHERE c."chunk_id" = ANY($1);

-- name: VectorStoreFileText
-- $1 store, $2 file: its chunks' text in order.
SELECT c."content" FROM "TianjiLLM_VectorStoreChunkTable" c
WHERE c."vector_store_id" = $1 AND c."file_id" = $2 ORDER BY c."seq";

-- name: InsertVectorStoreFileBatch
INSERT INTO "TianjiLLM_VectorStoreFileBatchTable" AS b ("batch_id", "vector_store_id", "file_ids")
VALUES ($1, $2, $3)
RETURNING to_jsonb(b);

-- name: GetVectorStoreFileBatch
SELECT to_jsonb(b) FROM "TianjiLLM_VectorStoreFileBatchTable" b
WHERE b."vector_store_id" = $1 AND b."batch_id" = $2;

-- name: SetVectorStoreFileBatchStatus
UPDATE "TianjiLLM_VectorStoreFileBatchTable" b
SET "status" = $2, "updated_at" = now()::timestamp(3)
WHERE b."batch_id" = $1 AND b."status" = 'in_progress'
RETURNING to_jsonb(b);

-- name: CancelVectorStoreBatchFiles
-- $1 store, $2 batch: files of the batch still in progress are cancelled.
UPDATE "TianjiLLM_VectorStoreFileTable" f
SET "status" = 'cancelled', "updated_at" = now()::timestamp(3)
WHERE f."vector_store_id" = $1 AND f."batch_id" = $2 AND f."status" = 'in_progress';

-- name: TouchVectorStore
-- $1 store: used now (its last_active_at, for expires_after).
UPDATE "TianjiLLM_ManagedVectorStoreTable" s SET "updated_at" = now()::timestamp(3)
WHERE s."unified_resource_id" = $1;

-- name: TouchVectorStoreFile
-- An ingestion still at work on the file (a batch of chunks written).
UPDATE "TianjiLLM_VectorStoreFileTable" f SET "updated_at" = now()::timestamp(3)
WHERE f."vector_store_id" = $1 AND f."file_id" = $2 AND f."status" = 'in_progress';

-- name: FailStaleVectorStoreFiles
-- Files whose ingestion stopped (no batch written for 10 minutes: the instance ingesting them
-- went away) are failed, their chunks deleted.
WITH stale AS (
    UPDATE "TianjiLLM_VectorStoreFileTable" f
    SET "status" = 'failed', "updated_at" = now()::timestamp(3),
        "last_error" = '{"code": "server_error", "message": "The ingestion was interrupted (the gateway ingesting it stopped); attach the file again"}'::jsonb
    WHERE f."status" = 'in_progress' AND f."updated_at" < now()::timestamp(3) - interval '10 minutes'
    RETURNING f."vector_store_id", f."file_id"
)
DELETE FROM "TianjiLLM_VectorStoreChunkTable" c USING stale s
WHERE c."vector_store_id" = s."vector_store_id" AND c."file_id" = s."file_id";
