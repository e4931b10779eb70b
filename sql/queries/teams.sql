-- Teams ("TianjiLLM_TeamTable") and team memberships ("TianjiLLM_TeamMembership").

-- name: GetTeamRecord
SELECT to_jsonb(t) || jsonb_build_object('object_permission', to_jsonb(p))
FROM "TianjiLLM_TeamTable" t
LEFT JOIN "TianjiLLM_ObjectPermissionTable" p ON p."object_permission_id" = t."object_permission_id"
WHERE t."team_id" = $1;

-- name: GetMembershipRecord
-- $1 team_id, $2 user_id; the membership with its budget's max_budget.
SELECT to_jsonb(m) || jsonb_build_object('max_budget', b."max_budget", 'rpm_limit', b."rpm_limit", 'tpm_limit', b."tpm_limit", 'max_parallel_requests', b."max_parallel_requests", 'model_max_budget', b."model_max_budget")
FROM "TianjiLLM_TeamMembership" m
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = m."budget_id"
WHERE m."team_id" = $1 AND m."user_id" = $2;

-- name: InsertTeam
-- $1: the new row as JSON (columns by name); unspecified columns take the defaults below. No
-- row when the team id is taken (`/team/new` checked first; a JWT caller's `team_id_upsert`
-- may race another instance's).
INSERT INTO "TianjiLLM_TeamTable"
SELECT * FROM jsonb_populate_record(
    NULL::"TianjiLLM_TeamTable",
    jsonb_build_object(
        'team_id', gen_random_uuid()::text,
        'admins', '[]'::jsonb, 'members', '[]'::jsonb, 'members_with_roles', '[]'::jsonb,
        'metadata', '{}'::jsonb, 'spend', 0, 'models', '[]'::jsonb, 'blocked', false,
        'model_spend', '{}'::jsonb, 'model_max_budget', '{}'::jsonb, 'router_settings', '{}'::jsonb,
        'team_member_permissions', '[]'::jsonb, 'access_group_ids', '[]'::jsonb,
        'policies', '[]'::jsonb, 'default_team_member_models', '[]'::jsonb,
        'allow_team_guardrail_config', false,
        'created_at', now()::timestamp(3), 'updated_at', now()::timestamp(3)
    ) || $1::jsonb
)
ON CONFLICT ("team_id") DO NOTHING
RETURNING to_jsonb("TianjiLLM_TeamTable".*);

-- name: GetTeamRows
-- $1 team ids; locks the rows for the caller's transaction.
SELECT to_jsonb(t) FROM "TianjiLLM_TeamTable" t WHERE t."team_id" = ANY($1) ORDER BY t."team_id" FOR UPDATE;

-- name: UpdateTeam
-- $1 team_id, $2 the columns to change as JSON
UPDATE "TianjiLLM_TeamTable" AS t
SET ("team_alias", "organization_id", "object_permission_id", "admins", "members", "members_with_roles", "metadata", "max_budget", "soft_budget", "spend", "models", "max_parallel_requests", "tpm_limit", "rpm_limit", "tpd_limit", "budget_duration", "budget_reset_at", "blocked", "model_max_budget", "router_settings", "team_member_permissions", "access_group_ids", "policies", "default_team_member_models", "budget_limits", "model_id", "updated_at")
  = (SELECT p."team_alias", p."organization_id", p."object_permission_id", p."admins", p."members", p."members_with_roles", p."metadata", p."max_budget", p."soft_budget", p."spend", p."models", p."max_parallel_requests", p."tpm_limit", p."rpm_limit", p."tpd_limit", p."budget_duration", p."budget_reset_at", p."blocked", p."model_max_budget", p."router_settings", p."team_member_permissions", p."access_group_ids", p."policies", p."default_team_member_models", p."budget_limits", p."model_id", now()::timestamp(3)
     FROM jsonb_populate_record(t, $2::jsonb) p)
WHERE t."team_id" = $1
RETURNING to_jsonb(t);

-- name: ArchiveTeams
-- Copy teams into the deleted-teams table. $1 team ids, $2 deleted_by, $3 deleted_by_api_key,
-- $4 changed-by header value.
INSERT INTO "TianjiLLM_DeletedTeamTable"
SELECT d.* FROM "TianjiLLM_TeamTable" t,
LATERAL jsonb_populate_record(
    NULL::"TianjiLLM_DeletedTeamTable",
    to_jsonb(t) || jsonb_build_object(
        'id', gen_random_uuid()::text, 'deleted_at', now()::timestamp(3),
        'deleted_by', $2::text, 'deleted_by_api_key', $3::text, 'litellm_changed_by', $4::text
    )
) d
WHERE t."team_id" = ANY($1);

-- name: DeleteTeams
DELETE FROM "TianjiLLM_TeamTable" t WHERE t."team_id" = ANY($1) RETURNING t."team_id";

-- name: TeamKeyTokens
SELECT t."token" FROM "TianjiLLM_VerificationToken" t WHERE t."team_id" = ANY($1);

-- name: TeamKeys
-- $1 team_id, $2 limit
SELECT to_jsonb(t) FROM "TianjiLLM_VerificationToken" t WHERE t."team_id" = $1
ORDER BY t."created_at" DESC NULLS LAST LIMIT $2;

-- name: TeamMemberships
-- $1 team_id: every membership with its budget row.
SELECT to_jsonb(m) || jsonb_build_object('litellm_budget_table', to_jsonb(b))
FROM "TianjiLLM_TeamMembership" m
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = m."budget_id"
WHERE m."team_id" = $1 ORDER BY m."user_id";

-- name: DeleteTeamMemberships
-- $1 team ids; returns (team_id, user_id) of what was removed.
DELETE FROM "TianjiLLM_TeamMembership" m WHERE m."team_id" = ANY($1) RETURNING m."team_id", m."user_id";

-- name: UpsertMembership
-- $1 user_id, $2 team_id, $3 budget_id (NULL keeps the current one)
INSERT INTO "TianjiLLM_TeamMembership" AS m ("user_id", "team_id", "budget_id")
VALUES ($1, $2, $3)
ON CONFLICT ("user_id", "team_id") DO UPDATE SET "budget_id" = COALESCE(EXCLUDED."budget_id", m."budget_id")
RETURNING to_jsonb(m);

-- name: GetMembershipForUpdate
-- $1 team_id, $2 user_id
SELECT to_jsonb(m) FROM "TianjiLLM_TeamMembership" m
WHERE m."team_id" = $1 AND m."user_id" = $2 FOR UPDATE;

-- name: DeleteMembership
-- $1 team_id, $2 user_id
DELETE FROM "TianjiLLM_TeamMembership" m WHERE m."team_id" = $1 AND m."user_id" = $2;

-- name: ListTeams
-- $1 organization_id (optional), $2 member user_id (optional), $3 team_alias (optional)
SELECT to_jsonb(t) FROM "TianjiLLM_TeamTable" t
WHERE ($1::text IS NULL OR t."organization_id" = $1)
  AND ($2::text IS NULL OR t."members_with_roles" @> jsonb_build_array(jsonb_build_object('user_id', $2::text)))
  AND ($3::text IS NULL OR t."team_alias" = $3)
ORDER BY t."created_at", t."team_id";

-- name: TeamsByIds
SELECT to_jsonb(t) FROM "TianjiLLM_TeamTable" t WHERE t."team_id" = ANY($1) ORDER BY t."team_id";

-- name: RemoveTeamFromUsers
-- $1 team ids: drop them from every user's `teams`.
UPDATE "TianjiLLM_UserTable" u
SET "teams" = ARRAY(SELECT x FROM unnest(u."teams") x WHERE x <> ALL($1)), "updated_at" = now()::timestamp(3)
WHERE u."teams" && $1
RETURNING u."user_id";

-- name: MemberKeyTokens
-- $1 team_id, $2 user_id: the member's keys in the team.
SELECT t."token" FROM "TianjiLLM_VerificationToken" t WHERE t."team_id" = $1 AND t."user_id" = $2;
