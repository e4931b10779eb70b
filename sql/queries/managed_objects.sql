-- Objects held for callers and listed per owner ("TianjiLLM_ManagedObjectTable": videos,
-- containers, batches, fine-tuning jobs).

-- name: InsertManagedObject
-- $1 id given to the client, $2 provider's id, $3 object (JSON), $4 purpose, $5 status,
-- $6 deployment id, $7 model group, $8 user id, $9 team id
INSERT INTO "TianjiLLM_ManagedObjectTable"
    ("unified_object_id", "model_object_id", "file_object", "file_purpose", "status",
     "model_id", "model_group", "user_id", "team_id", "created_by", "updated_by")
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULLIF($8, ''), NULLIF($8, ''))
ON CONFLICT ("unified_object_id") DO NOTHING;

-- name: UpdateManagedObject
-- The object as seen now. $1 deployment id, $2 provider's id, $3 purpose, $4 object, $5 status
UPDATE "TianjiLLM_ManagedObjectTable"
SET "file_object" = $4, "status" = $5, "updated_at" = CURRENT_TIMESTAMP
WHERE "model_id" = $1 AND "model_object_id" = $2 AND "file_purpose" = $3;

-- name: ListManagedObjects
-- $1 purpose, $2 owner filter on (user, team) (false: every owner), $3 user id, $4 team id,
-- $5 rows wanted, $6 newest first, $7 only rows past this object (its provider id; NULL: from
-- the start), $8 its deployment, $9 only this model group (NULL: any).
SELECT o."unified_object_id", o."model_object_id", o."file_object", o."status", o."model_id",
       o."user_id", o."team_id"
FROM "TianjiLLM_ManagedObjectTable" o
WHERE o."file_purpose" = $1
  AND (NOT $2::bool OR (o."user_id" = $3 AND o."team_id" = $4))
  AND ($9::text IS NULL OR o."model_group" = $9::text)
  AND ($7::text IS NULL OR (
        CASE WHEN $6::bool
             THEN (o."created_at", o."id") < (
                SELECT a."created_at", a."id" FROM "TianjiLLM_ManagedObjectTable" a
                WHERE a."model_object_id" = $7 AND a."model_id" = $8 AND a."file_purpose" = $1
                LIMIT 1)
             ELSE (o."created_at", o."id") > (
                SELECT a."created_at", a."id" FROM "TianjiLLM_ManagedObjectTable" a
                WHERE a."model_object_id" = $7 AND a."model_id" = $8 AND a."file_purpose" = $1
                LIMIT 1)
        END))
ORDER BY
  CASE WHEN $6::bool THEN o."created_at" END DESC,
  CASE WHEN $6::bool THEN o."id" END DESC,
  CASE WHEN NOT $6::bool THEN o."created_at" END ASC,
  CASE WHEN NOT $6::bool THEN o."id" END ASC
LIMIT $5;

-- name: DeleteManagedObject
-- $1 deployment id, $2 provider's id, $3 purpose
DELETE FROM "TianjiLLM_ManagedObjectTable"
WHERE "model_id" = $1 AND "model_object_id" = $2 AND "file_purpose" = $3;
