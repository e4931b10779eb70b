-- End users / customers ("TianjiLLM_EndUserTable").

-- name: GetEndUserRecord
SELECT to_jsonb(e) || jsonb_build_object('max_budget', b."max_budget")
FROM "TianjiLLM_EndUserTable" e
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = e."budget_id"
WHERE e."user_id" = $1;
