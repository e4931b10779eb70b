-- Organisations ("TianjiLLM_OrganizationTable") and their members.

-- name: GetOrgRecord
SELECT to_jsonb(o) || jsonb_build_object('max_budget', b."max_budget", 'rpm_limit', b."rpm_limit", 'tpm_limit', b."tpm_limit", 'max_parallel_requests', b."max_parallel_requests")
FROM "TianjiLLM_OrganizationTable" o
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = o."budget_id"
WHERE o."organization_id" = $1;

-- name: InsertOrg
INSERT INTO "TianjiLLM_OrganizationTable"
SELECT * FROM jsonb_populate_record(
    NULL::"TianjiLLM_OrganizationTable",
    jsonb_build_object(
        'organization_id', gen_random_uuid()::text, 'metadata', '{}'::jsonb, 'models', '[]'::jsonb,
        'spend', 0, 'model_spend', '{}'::jsonb,
        'created_at', now()::timestamp(3), 'updated_at', now()::timestamp(3)
    ) || $1::jsonb
)
RETURNING to_jsonb("TianjiLLM_OrganizationTable".*);

-- name: GetOrgRows
-- $1 ids; each with its budget, locked for the caller's transaction.
SELECT to_jsonb(o) || jsonb_build_object('litellm_budget_table', to_jsonb(b))
FROM "TianjiLLM_OrganizationTable" o
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = o."budget_id"
WHERE o."organization_id" = ANY($1) ORDER BY o."organization_id" FOR UPDATE OF o;

-- name: UpdateOrg
-- $1 organization_id, $2 the columns to change as JSON, $3 updated_by
UPDATE "TianjiLLM_OrganizationTable" AS o
SET ("organization_alias", "budget_id", "metadata", "models", "spend", "object_permission_id", "updated_at", "updated_by")
  = (SELECT p."organization_alias", p."budget_id", p."metadata", p."models", p."spend", p."object_permission_id", now()::timestamp(3), $3::text
     FROM jsonb_populate_record(o, $2::jsonb) p)
WHERE o."organization_id" = $1
RETURNING to_jsonb(o);

-- name: DeleteOrgs
DELETE FROM "TianjiLLM_OrganizationTable" o WHERE o."organization_id" = ANY($1) RETURNING o."organization_id";

-- name: DeleteOrgMemberships
DELETE FROM "TianjiLLM_OrganizationMembership" m WHERE m."organization_id" = ANY($1) RETURNING m."user_id";

-- name: ListOrgs
-- $1 member user_id (optional). Each with its budget, its members (membership rows with their
-- budgets) and its teams, as LiteLLM lists them.
SELECT to_jsonb(o) || jsonb_build_object(
    'litellm_budget_table', to_jsonb(b),
    'members', COALESCE((
        SELECT jsonb_agg(to_jsonb(m) || jsonb_build_object('litellm_budget_table', to_jsonb(mb))
                         ORDER BY m."user_id")
        FROM "TianjiLLM_OrganizationMembership" m
        LEFT JOIN "TianjiLLM_BudgetTable" mb ON mb."budget_id" = m."budget_id"
        WHERE m."organization_id" = o."organization_id"), '[]'::jsonb),
    'teams', COALESCE((
        SELECT jsonb_agg(to_jsonb(t) ORDER BY t."team_id") FROM "TianjiLLM_TeamTable" t
        WHERE t."organization_id" = o."organization_id"), '[]'::jsonb))
FROM "TianjiLLM_OrganizationTable" o
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = o."budget_id"
WHERE $1::text IS NULL OR EXISTS (
    SELECT 1 FROM "TianjiLLM_OrganizationMembership" m
    WHERE m."organization_id" = o."organization_id" AND m."user_id" = $1)
ORDER BY o."created_at", o."organization_id";

-- name: OrgMembers
-- Each membership with its budget and its user (as LiteLLM's /organization/info has them).
SELECT to_jsonb(m) || jsonb_build_object('litellm_budget_table', to_jsonb(b),
                                         'user', to_jsonb(u) - 'password')
FROM "TianjiLLM_OrganizationMembership" m
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = m."budget_id"
LEFT JOIN "TianjiLLM_UserTable" u ON u."user_id" = m."user_id"
WHERE m."organization_id" = $1 ORDER BY m."user_id";

-- name: OrgTeams
SELECT to_jsonb(t) FROM "TianjiLLM_TeamTable" t WHERE t."organization_id" = $1 ORDER BY t."team_id";

-- name: UpsertOrgMembership
-- $1 user_id, $2 organization_id, $3 user_role, $4 budget_id (NULL keeps the current one)
INSERT INTO "TianjiLLM_OrganizationMembership" AS m ("user_id", "organization_id", "user_role", "budget_id", "spend", "created_at", "updated_at")
VALUES ($1, $2, $3, $4, 0, now()::timestamp(3), now()::timestamp(3))
ON CONFLICT ("user_id", "organization_id") DO UPDATE
SET "user_role" = COALESCE(EXCLUDED."user_role", m."user_role"),
    "budget_id" = COALESCE(EXCLUDED."budget_id", m."budget_id"),
    "updated_at" = now()::timestamp(3)
RETURNING to_jsonb(m);

-- name: GetOrgMembership
SELECT to_jsonb(m) FROM "TianjiLLM_OrganizationMembership" m
WHERE m."organization_id" = $1 AND m."user_id" = $2 FOR UPDATE;

-- name: DeleteOrgMembership
DELETE FROM "TianjiLLM_OrganizationMembership" m WHERE m."organization_id" = $1 AND m."user_id" = $2;

-- name: SetUserOrg
-- $1 user_id, $2 organization_id (NULL clears it, when it was $3)
UPDATE "TianjiLLM_UserTable" u SET "organization_id" = $2, "updated_at" = now()::timestamp(3)
WHERE u."user_id" = $1 AND ($2::text IS NOT NULL OR u."organization_id" = $3);
