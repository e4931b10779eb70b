-- Anthropic message batches created through the gateway ("TianjiLLM_MessageBatchTable").

-- name: InsertMessageBatch
-- $1 deployment id, $2 provider batch id, $3 model group, $4 user id, $5 team id
INSERT INTO "TianjiLLM_MessageBatchTable" ("model_id", "batch_id", "model_group", "user_id", "team_id")
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT ("model_id", "batch_id") DO NOTHING;

-- name: ListMessageBatches
-- Newest first. $1 owner filter on (user, team) (false: every owner), $2 user id, $3 team id,
-- $4 rows wanted, $5 only rows created before this batch's row ($6 its deployment; NULL: no
-- bound), $7 only rows created after this batch's row ($8 its deployment; NULL: no bound).
SELECT b."model_id", b."batch_id", b."model_group", b."user_id", b."team_id"
FROM "TianjiLLM_MessageBatchTable" b
WHERE (NOT $1::bool OR (b."user_id" = $2 AND b."team_id" = $3))
  AND ($5::text IS NULL OR (b."created_at", b."batch_id") < (
        SELECT a."created_at", a."batch_id" FROM "TianjiLLM_MessageBatchTable" a
        WHERE a."batch_id" = $5 AND a."model_id" = $6))
  AND ($7::text IS NULL OR (b."created_at", b."batch_id") > (
        SELECT a."created_at", a."batch_id" FROM "TianjiLLM_MessageBatchTable" a
        WHERE a."batch_id" = $7 AND a."model_id" = $8))
ORDER BY b."created_at" DESC, b."batch_id" DESC
LIMIT $4;

-- name: ClaimMessageBatchSpend
-- The first complete read of a batch's results books its spend: this marks it, once.
-- $1 deployment id, $2 provider batch id
UPDATE "TianjiLLM_MessageBatchTable" SET "spend_booked_at" = now()
WHERE "model_id" = $1 AND "batch_id" = $2 AND "spend_booked_at" IS NULL
RETURNING "batch_id";

-- name: DeleteMessageBatch
-- $1 deployment id, $2 provider batch id
DELETE FROM "TianjiLLM_MessageBatchTable" WHERE "model_id" = $1 AND "batch_id" = $2;
