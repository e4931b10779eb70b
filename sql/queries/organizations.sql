-- Organisations ("TianjiLLM_OrganizationTable") and their members.

-- name: GetOrgRecord
SELECT to_jsonb(o) || jsonb_build_object('max_budget', b."max_budget")
FROM "TianjiLLM_OrganizationTable" o
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = o."budget_id"
WHERE o."organization_id" = $1;
