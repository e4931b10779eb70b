-- Internal users ("TianjiLLM_UserTable"). The password hash never leaves the database.

-- name: GetUserRecord
SELECT to_jsonb(u) - 'password' FROM "TianjiLLM_UserTable" u WHERE u."user_id" = $1;

-- name: InsertUser
-- $1: the new row as JSON; unspecified columns take the defaults below.
INSERT INTO "TianjiLLM_UserTable"
SELECT * FROM jsonb_populate_record(
    NULL::"TianjiLLM_UserTable",
    jsonb_build_object(
        'teams', '[]'::jsonb, 'spend', 0, 'metadata', '{}'::jsonb, 'models', '[]'::jsonb,
        'allowed_cache_controls', '[]'::jsonb, 'policies', '[]'::jsonb,
        'model_spend', '{}'::jsonb, 'model_max_budget', '{}'::jsonb,
        'created_at', now()::timestamp(3), 'updated_at', now()::timestamp(3)
    ) || $1::jsonb
)
RETURNING to_jsonb("TianjiLLM_UserTable".*) - 'password';

-- name: EnsureUser
-- $1 user_id, $2 user_email: create an internal user unless it exists.
INSERT INTO "TianjiLLM_UserTable" ("user_id", "user_email", "user_role", "teams", "metadata", "model_spend", "model_max_budget", "created_at", "updated_at")
VALUES ($1, $2, 'internal_user', ARRAY[]::text[], '{}'::jsonb, '{}'::jsonb, '{}'::jsonb, now()::timestamp(3), now()::timestamp(3))
ON CONFLICT ("user_id") DO NOTHING;

-- name: UserIdByEmail
SELECT u."user_id" FROM "TianjiLLM_UserTable" u WHERE lower(u."user_email") = lower($1) ORDER BY u."created_at" LIMIT 1;

-- name: AddUserTeam
-- $1 user_id, $2 team_id
UPDATE "TianjiLLM_UserTable" u
SET "teams" = array_append(COALESCE(u."teams", ARRAY[]::text[]), $2), "updated_at" = now()::timestamp(3)
WHERE u."user_id" = $1 AND NOT ($2 = ANY(COALESCE(u."teams", ARRAY[]::text[])));

-- name: RemoveUserTeam
-- $1 user_id, $2 team_id
UPDATE "TianjiLLM_UserTable" u
SET "teams" = array_remove(u."teams", $2), "updated_at" = now()::timestamp(3)
WHERE u."user_id" = $1;

-- name: GetUserRows
-- $1 user ids (locked for the caller's transaction)
SELECT to_jsonb(u) - 'password' FROM "TianjiLLM_UserTable" u WHERE u."user_id" = ANY($1) ORDER BY u."user_id" FOR UPDATE;

-- name: UpdateUser
-- $1 user_id, $2 the columns to change as JSON
UPDATE "TianjiLLM_UserTable" AS u
SET ("user_alias", "team_id", "sso_user_id", "organization_id", "object_permission_id", "password", "teams", "user_role", "max_budget", "spend", "user_email", "models", "metadata", "max_parallel_requests", "tpm_limit", "rpm_limit", "budget_duration", "budget_reset_at", "allowed_cache_controls", "policies", "model_max_budget", "updated_at")
  = (SELECT p."user_alias", p."team_id", p."sso_user_id", p."organization_id", p."object_permission_id", p."password", p."teams", p."user_role", p."max_budget", p."spend", p."user_email", p."models", p."metadata", p."max_parallel_requests", p."tpm_limit", p."rpm_limit", p."budget_duration", p."budget_reset_at", p."allowed_cache_controls", p."policies", p."model_max_budget", now()::timestamp(3)
     FROM jsonb_populate_record(u, $2::jsonb) p)
WHERE u."user_id" = $1
RETURNING to_jsonb(u) - 'password';

-- name: DeleteUsers
DELETE FROM "TianjiLLM_UserTable" u WHERE u."user_id" = ANY($1) RETURNING u."user_id";

-- name: UserKeyTokens
SELECT t."token" FROM "TianjiLLM_VerificationToken" t WHERE t."user_id" = ANY($1);

-- name: UserKeys
SELECT to_jsonb(t) FROM "TianjiLLM_VerificationToken" t WHERE t."user_id" = $1
ORDER BY t."created_at" DESC NULLS LAST;

-- name: DeleteUserMemberships
DELETE FROM "TianjiLLM_TeamMembership" m WHERE m."user_id" = ANY($1) RETURNING m."team_id", m."user_id";

-- name: DeleteUserOrgMemberships
DELETE FROM "TianjiLLM_OrganizationMembership" m WHERE m."user_id" = ANY($1);

-- name: ListUsers
-- $1 user_role, $2 user_ids (optional list), $3 team_id, $4 email substring, $5 limit, $6 offset
SELECT to_jsonb(u) - 'password' FROM "TianjiLLM_UserTable" u
WHERE ($1::text IS NULL OR u."user_role" = $1)
  AND ($2::text[] IS NULL OR u."user_id" = ANY($2))
  AND ($3::text IS NULL OR $3 = ANY(u."teams"))
  AND ($4::text IS NULL OR u."user_email" ILIKE '%' || $4 || '%')
ORDER BY u."created_at" DESC NULLS LAST, u."user_id"
LIMIT $5 OFFSET $6;

-- name: CountUsers
SELECT count(*) FROM "TianjiLLM_UserTable" u
WHERE ($1::text IS NULL OR u."user_role" = $1)
  AND ($2::text[] IS NULL OR u."user_id" = ANY($2))
  AND ($3::text IS NULL OR $3 = ANY(u."teams"))
  AND ($4::text IS NULL OR u."user_email" ILIKE '%' || $4 || '%');

-- name: RemoveUsersFromTeams
-- $1 user ids: drop them from every team's members_with_roles; returns the teams changed.
UPDATE "TianjiLLM_TeamTable" t
SET "members_with_roles" = COALESCE((
        SELECT jsonb_agg(m) FROM jsonb_array_elements(t."members_with_roles") m
        WHERE NOT (m->>'user_id' = ANY($1))), '[]'::jsonb),
    "updated_at" = now()::timestamp(3)
WHERE jsonb_typeof(t."members_with_roles") = 'array'
  AND EXISTS (SELECT 1 FROM jsonb_array_elements(t."members_with_roles") m WHERE m->>'user_id' = ANY($1))
RETURNING t."team_id";

