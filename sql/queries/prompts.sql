-- Prompt templates ("TianjiLLM_PromptTable"): one row per version. Rows travel as JSON.

-- name: ListPrompts
SELECT to_jsonb(p) FROM "TianjiLLM_PromptTable" p ORDER BY p."prompt_id", p."version";

-- name: LockPrompt
-- $1 prompt_id: serialises the writes of one prompt (the next version is read, then written)
SELECT pg_advisory_xact_lock(hashtextextended('TianjiLLM_PromptTable:' || $1::text, 0));

-- name: GetPromptVersions
-- $1 prompt_id: its rows, oldest version first
SELECT to_jsonb(p) FROM "TianjiLLM_PromptTable" p WHERE p."prompt_id" = $1 ORDER BY p."version";

-- name: InsertPromptVersion
-- $1 prompt_id, $2 tianji_params, $3 prompt_info: the next version of the prompt
INSERT INTO "TianjiLLM_PromptTable" ("prompt_id", "version", "tianji_params", "prompt_info")
SELECT $1, COALESCE(MAX(p."version"), 0) + 1, $2, $3
FROM "TianjiLLM_PromptTable" p WHERE p."prompt_id" = $1
RETURNING to_jsonb("TianjiLLM_PromptTable".*);

-- name: UpdatePromptVersion
-- $1 prompt_id, $2 version, $3 tianji_params, $4 prompt_info
UPDATE "TianjiLLM_PromptTable" p
SET "tianji_params" = $3, "prompt_info" = $4, "updated_at" = now()::timestamp(3)
WHERE p."prompt_id" = $1 AND p."version" = $2
RETURNING to_jsonb(p);

-- name: DeletePrompt
-- $1 prompt_id: every version
DELETE FROM "TianjiLLM_PromptTable" p WHERE p."prompt_id" = $1
RETURNING to_jsonb(p);
