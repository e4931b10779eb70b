-- End users / customers ("TianjiLLM_EndUserTable").

-- name: GetEndUserRecord
SELECT to_jsonb(e) || jsonb_build_object('max_budget', b."max_budget", 'rpm_limit', b."rpm_limit", 'tpm_limit', b."tpm_limit", 'max_parallel_requests', b."max_parallel_requests", 'model_max_budget', b."model_max_budget")
FROM "TianjiLLM_EndUserTable" e
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = e."budget_id"
WHERE e."user_id" = $1;

-- name: InsertEndUser
INSERT INTO "TianjiLLM_EndUserTable"
SELECT * FROM jsonb_populate_record(
    NULL::"TianjiLLM_EndUserTable",
    jsonb_build_object('spend', 0, 'blocked', false, 'models', '[]'::jsonb) || $1::jsonb
)
RETURNING to_jsonb("TianjiLLM_EndUserTable".*);

-- name: GetEndUserRows
-- $1 ids; each with its budget row, locked for the caller's transaction.
SELECT to_jsonb(e) || jsonb_build_object('litellm_budget_table', to_jsonb(b))
FROM "TianjiLLM_EndUserTable" e
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = e."budget_id"
WHERE e."user_id" = ANY($1) ORDER BY e."user_id" FOR UPDATE OF e;

-- name: UpdateEndUser
-- $1 user_id, $2 the columns to change as JSON
UPDATE "TianjiLLM_EndUserTable" AS e
SET ("alias", "spend", "allowed_model_region", "default_model", "models", "budget_id", "object_permission_id", "blocked")
  = (SELECT p."alias", p."spend", p."allowed_model_region", p."default_model", p."models", p."budget_id", p."object_permission_id", p."blocked"
     FROM jsonb_populate_record(e, $2::jsonb) p)
WHERE e."user_id" = $1
RETURNING to_jsonb(e);

-- name: DeleteEndUsers
DELETE FROM "TianjiLLM_EndUserTable" e WHERE e."user_id" = ANY($1) RETURNING e."user_id";

-- name: ListEndUsers
SELECT to_jsonb(e) || jsonb_build_object('litellm_budget_table', to_jsonb(b))
FROM "TianjiLLM_EndUserTable" e
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = e."budget_id"
ORDER BY e."user_id";
