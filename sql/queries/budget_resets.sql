-- Scheduled budget resets. Each query takes the entities whose budget period is over
-- (budget_reset_at passed), sets their spend to 0 and their next budget_reset_at to now plus
-- budget_duration; entities with a budget_duration and no budget_reset_at only get the next
-- reset time. Times are UTC. The scheduler runs them on one instance; re-checking
-- budget_reset_at under the row lock makes a second pass a no-op anyway.

-- name: ResetDueKeys
UPDATE "TianjiLLM_VerificationToken" t
SET "spend" = CASE WHEN t."budget_reset_at" IS NULL THEN t."spend" ELSE 0 END,
    "budget_reset_at" = (now() AT TIME ZONE 'UTC')::timestamp(3)
        + make_interval(secs => tianji_duration_secs(t."budget_duration"))
WHERE tianji_duration_secs(t."budget_duration") IS NOT NULL
  AND (t."budget_reset_at" IS NULL OR t."budget_reset_at" <= (now() AT TIME ZONE 'UTC'))
RETURNING t."token";

-- name: ResetDueUsers
UPDATE "TianjiLLM_UserTable" t
SET "spend" = CASE WHEN t."budget_reset_at" IS NULL THEN t."spend" ELSE 0 END,
    "budget_reset_at" = (now() AT TIME ZONE 'UTC')::timestamp(3)
        + make_interval(secs => tianji_duration_secs(t."budget_duration"))
WHERE tianji_duration_secs(t."budget_duration") IS NOT NULL
  AND (t."budget_reset_at" IS NULL OR t."budget_reset_at" <= (now() AT TIME ZONE 'UTC'))
RETURNING t."user_id";

-- name: ResetDueTeams
UPDATE "TianjiLLM_TeamTable" t
SET "spend" = CASE WHEN t."budget_reset_at" IS NULL THEN t."spend" ELSE 0 END,
    "budget_reset_at" = (now() AT TIME ZONE 'UTC')::timestamp(3)
        + make_interval(secs => tianji_duration_secs(t."budget_duration"))
WHERE tianji_duration_secs(t."budget_duration") IS NOT NULL
  AND (t."budget_reset_at" IS NULL OR t."budget_reset_at" <= (now() AT TIME ZONE 'UTC'))
RETURNING t."team_id";

-- name: ResetDueBudgets
-- Budget-table rows (the budgets of organisations, end users and team members): advance them
-- and return the ids of those whose period ended.
WITH due AS (
    SELECT b."budget_id", b."budget_reset_at" IS NOT NULL AS ended
    FROM "TianjiLLM_BudgetTable" b
    WHERE tianji_duration_secs(b."budget_duration") IS NOT NULL
      AND (b."budget_reset_at" IS NULL OR b."budget_reset_at" <= (now() AT TIME ZONE 'UTC'))
    FOR UPDATE
)
UPDATE "TianjiLLM_BudgetTable" t
SET "budget_reset_at" = (now() AT TIME ZONE 'UTC')::timestamp(3)
        + make_interval(secs => tianji_duration_secs(t."budget_duration"))
FROM due WHERE t."budget_id" = due."budget_id"
RETURNING t."budget_id", due.ended;

-- name: ResetBudgetOrganizations
UPDATE "TianjiLLM_OrganizationTable" SET "spend" = 0
WHERE "budget_id" = ANY($1::text[]) RETURNING "organization_id";

-- name: ResetBudgetEndUsers
UPDATE "TianjiLLM_EndUserTable" SET "spend" = 0
WHERE "budget_id" = ANY($1::text[]) RETURNING "user_id";

-- name: ResetBudgetTeamMembers
UPDATE "TianjiLLM_TeamMembership" SET "spend" = 0
WHERE "budget_id" = ANY($1::text[]) RETURNING "team_id", "user_id";
