-- Budgets ("TianjiLLM_BudgetTable"), shared by organisations, team memberships, end users and keys.

-- name: InsertBudget
-- $1: the new row as JSON
INSERT INTO "TianjiLLM_BudgetTable"
SELECT * FROM jsonb_populate_record(
    NULL::"TianjiLLM_BudgetTable",
    jsonb_build_object(
        'budget_id', gen_random_uuid()::text, 'allowed_models', '[]'::jsonb,
        'created_at', now()::timestamp(3), 'updated_at', now()::timestamp(3)
    ) || $1::jsonb
)
RETURNING to_jsonb("TianjiLLM_BudgetTable".*);

-- name: GetBudgetRows
SELECT to_jsonb(b) FROM "TianjiLLM_BudgetTable" b WHERE b."budget_id" = ANY($1) ORDER BY b."budget_id" FOR UPDATE;

-- name: UpdateBudget
-- $1 budget_id, $2 the columns to change as JSON, $3 updated_by
UPDATE "TianjiLLM_BudgetTable" AS b
SET ("max_budget", "soft_budget", "max_parallel_requests", "tpm_limit", "rpm_limit", "tpd_limit", "model_max_budget", "budget_duration", "budget_reset_at", "allowed_models", "temp_budget_increase", "temp_budget_expiry", "updated_at", "updated_by")
  = (SELECT p."max_budget", p."soft_budget", p."max_parallel_requests", p."tpm_limit", p."rpm_limit", p."tpd_limit", p."model_max_budget", p."budget_duration", p."budget_reset_at", p."allowed_models", p."temp_budget_increase", p."temp_budget_expiry", now()::timestamp(3), $3::text
     FROM jsonb_populate_record(b, $2::jsonb) p)
WHERE b."budget_id" = $1
RETURNING to_jsonb(b);

-- name: DeleteBudgets
DELETE FROM "TianjiLLM_BudgetTable" b WHERE b."budget_id" = ANY($1) RETURNING b."budget_id";

-- name: ListBudgets
SELECT to_jsonb(b) FROM "TianjiLLM_BudgetTable" b ORDER BY b."created_at", b."budget_id";

-- name: BudgetInUse
-- $1 budget id: whether an organisation still needs it (their budget is required).
SELECT 1 FROM "TianjiLLM_OrganizationTable" o WHERE o."budget_id" = $1 LIMIT 1;

-- name: InsertObjectPermission
-- $1: the row as JSON
INSERT INTO "TianjiLLM_ObjectPermissionTable"
SELECT * FROM jsonb_populate_record(
    NULL::"TianjiLLM_ObjectPermissionTable",
    jsonb_build_object('object_permission_id', gen_random_uuid()::text) || $1::jsonb
)
RETURNING to_jsonb("TianjiLLM_ObjectPermissionTable".*);

-- name: GetObjectPermission
SELECT to_jsonb(o) FROM "TianjiLLM_ObjectPermissionTable" o WHERE o."object_permission_id" = $1;
