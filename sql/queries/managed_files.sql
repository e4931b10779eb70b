-- Files uploaded through the gateway ("TianjiLLM_ManagedFileTable"): which deployments hold
-- each file the client knows by one id, and who owns it.

-- name: InsertManagedFile
-- $1 id given to the client, $2 file object (JSON; NULL: not read yet), $3 model_mappings
-- ({deployment id: provider file id}), $4 the provider ids, $5 user id, $6 team id ('' = none).
-- Returns the row's id (none when the id was already recorded).
INSERT INTO "TianjiLLM_ManagedFileTable"
    ("unified_file_id", "file_object", "model_mappings", "flat_model_file_ids",
     "created_by", "team_id", "updated_by")
VALUES ($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, ''), NULLIF($5, ''))
ON CONFLICT ("unified_file_id") DO NOTHING
RETURNING "id";

-- name: GetManagedFile
-- $1 id given to the client
SELECT "file_object", "model_mappings", COALESCE("created_by", ''), COALESCE("team_id", '')
FROM "TianjiLLM_ManagedFileTable"
WHERE "unified_file_id" = $1;

-- name: ManagedFileOfProviderId
-- The client's id of the file that deployment $1 holds as $2 (a file sent to several
-- deployments first).
SELECT "unified_file_id"
FROM "TianjiLLM_ManagedFileTable"
WHERE "flat_model_file_ids" @> ARRAY[$2::text] AND "model_mappings" ->> $1::text = $2::text
ORDER BY cardinality("flat_model_file_ids") DESC, "created_at"
LIMIT 1;

-- name: SetManagedFileObject
-- $1 id given to the client, $2 the file object as read now
UPDATE "TianjiLLM_ManagedFileTable"
SET "file_object" = $2, "updated_at" = CURRENT_TIMESTAMP
WHERE "unified_file_id" = $1;

-- name: SetManagedFileMappings
-- The deployments still holding the file after some deleted it. $1 id given to the client,
-- $2 model_mappings, $3 the provider ids
UPDATE "TianjiLLM_ManagedFileTable"
SET "model_mappings" = $2, "flat_model_file_ids" = $3, "updated_at" = CURRENT_TIMESTAMP
WHERE "unified_file_id" = $1;

-- name: DeleteManagedFile
-- $1 id given to the client; also the row of the one file deployment $2 holds as $3 (a file
-- deleted by a provider id)
DELETE FROM "TianjiLLM_ManagedFileTable"
WHERE "unified_file_id" = $1
   OR "model_mappings" = jsonb_build_object($2::text, $3::text);

-- name: ListManagedFiles
-- $1 owner filter on (user, team) (false: every owner), $2 user id, $3 team id, $4 rows wanted,
-- $5 newest first, $6 only rows past this client id (NULL: from the start), $7 only this
-- purpose (NULL: any), $8 only files some of these deployments hold (NULL: any).
SELECT f."unified_file_id", f."file_object", f."model_mappings"
FROM "TianjiLLM_ManagedFileTable" f
WHERE (NOT $1::bool OR (COALESCE(f."created_by", '') = $2 AND COALESCE(f."team_id", '') = $3))
  AND ($7::text IS NULL OR f."file_object" ->> 'purpose' = $7::text)
  AND ($8::text[] IS NULL OR f."model_mappings" ?| $8::text[])
  AND ($6::text IS NULL OR (
        CASE WHEN $5::bool
             THEN (f."created_at", f."id") < (
                SELECT a."created_at", a."id" FROM "TianjiLLM_ManagedFileTable" a
                WHERE a."unified_file_id" = $6)
             ELSE (f."created_at", f."id") > (
                SELECT a."created_at", a."id" FROM "TianjiLLM_ManagedFileTable" a
                WHERE a."unified_file_id" = $6)
        END))
ORDER BY
  CASE WHEN $5::bool THEN f."created_at" END DESC,
  CASE WHEN $5::bool THEN f."id" END DESC,
  CASE WHEN NOT $5::bool THEN f."created_at" END ASC,
  CASE WHEN NOT $5::bool THEN f."id" END ASC
LIMIT $4;
