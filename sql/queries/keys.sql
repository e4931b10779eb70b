-- Virtual keys ("TianjiLLM_VerificationToken"). Rows travel as JSON so the Rust side reads the
-- columns it knows by name; timestamps are added as epoch seconds.

-- name: GetKeyByToken
SELECT to_jsonb(t)
       || jsonb_build_object('expires_epoch', extract(epoch FROM t."expires"),
                             'soft_budget', b."soft_budget",
                             'object_permission', to_jsonb(p))
FROM "TianjiLLM_VerificationToken" t
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = t."budget_id"
LEFT JOIN "TianjiLLM_ObjectPermissionTable" p ON p."object_permission_id" = t."object_permission_id"
WHERE t."token" = $1;

-- name: InsertKey
-- $1: the new row as JSON (columns by name); unspecified columns take the defaults below.
INSERT INTO "TianjiLLM_VerificationToken"
SELECT * FROM jsonb_populate_record(
    NULL::"TianjiLLM_VerificationToken",
    jsonb_build_object(
        'soft_budget_cooldown', false, 'spend', 0, 'total_spend', 0,
        'aliases', '{}'::jsonb, 'config', '{}'::jsonb, 'router_settings', '{}'::jsonb,
        'permissions', '{}'::jsonb, 'metadata', '{}'::jsonb, 'model_spend', '{}'::jsonb,
        'model_max_budget', '{}'::jsonb, 'budget_fallbacks', '{}'::jsonb,
        'allowed_cache_controls', '[]'::jsonb, 'allowed_routes', '[]'::jsonb,
        'policies', '[]'::jsonb, 'access_group_ids', '[]'::jsonb,
        'rotation_count', 0, 'auto_rotate', false,
        'created_at', now()::timestamp(3), 'updated_at', now()::timestamp(3)
    ) || $1::jsonb
)
RETURNING to_jsonb("TianjiLLM_VerificationToken".*);

-- name: GetKeyRowsByTokens
-- With the key's budget row and object permissions, as LiteLLM returns them.
SELECT to_jsonb(t) || jsonb_build_object('litellm_budget_table', to_jsonb(b), 'object_permission', to_jsonb(o))
FROM "TianjiLLM_VerificationToken" t
LEFT JOIN "TianjiLLM_BudgetTable" b ON b."budget_id" = t."budget_id"
LEFT JOIN "TianjiLLM_ObjectPermissionTable" o ON o."object_permission_id" = t."object_permission_id"
WHERE t."token" = ANY($1);

-- name: GetKeyTokensByAliases
SELECT t."token" FROM "TianjiLLM_VerificationToken" t WHERE t."key_alias" = ANY($1);

-- name: KeyAliasTaken
SELECT 1 FROM "TianjiLLM_VerificationToken" t WHERE t."key_alias" = $1 LIMIT 1;

-- name: ArchiveKeys
-- Copy keys into the deleted-keys table. $1 tokens, $2 deleted_by, $3 deleted_by_api_key,
-- $4 changed-by header value.
INSERT INTO "TianjiLLM_DeletedVerificationToken"
SELECT d.* FROM "TianjiLLM_VerificationToken" t,
LATERAL jsonb_populate_record(
    NULL::"TianjiLLM_DeletedVerificationToken",
    to_jsonb(t) || jsonb_build_object(
        'id', gen_random_uuid()::text, 'deleted_at', now()::timestamp(3),
        'deleted_by', $2::text, 'deleted_by_api_key', $3::text, 'litellm_changed_by', $4::text
    )
) d
WHERE t."token" = ANY($1);

-- name: DeleteKeys
DELETE FROM "TianjiLLM_VerificationToken" t WHERE t."token" = ANY($1) RETURNING t."token";

-- name: SetKeyBlocked
UPDATE "TianjiLLM_VerificationToken" t
SET "blocked" = $2, "updated_at" = now()::timestamp(3), "updated_by" = $3
WHERE t."token" = $1
RETURNING to_jsonb(t);

-- name: UpdateKey
-- $1 token, $2 the columns to change as JSON (a JSON null clears), $3 updated_by.
UPDATE "TianjiLLM_VerificationToken" AS t
SET ("key_alias", "expires", "models", "spend", "max_budget", "user_id", "team_id", "agent_id", "project_id", "organization_id", "max_parallel_requests", "metadata", "tpm_limit", "rpm_limit", "tpd_limit", "budget_duration", "budget_reset_at", "budget_limits", "allowed_cache_controls", "allowed_routes", "config", "permissions", "model_max_budget", "budget_fallbacks", "blocked", "aliases", "policies", "router_settings", "access_group_ids", "budget_id", "object_permission_id", "key_type", "auto_rotate", "rotation_interval", "key_rotation_at", "updated_at", "updated_by")
  = (SELECT p."key_alias", p."expires", p."models", p."spend", p."max_budget", p."user_id", p."team_id", p."agent_id", p."project_id", p."organization_id", p."max_parallel_requests", p."metadata", p."tpm_limit", p."rpm_limit", p."tpd_limit", p."budget_duration", p."budget_reset_at", p."budget_limits", p."allowed_cache_controls", p."allowed_routes", p."config", p."permissions", p."model_max_budget", p."budget_fallbacks", p."blocked", p."aliases", p."policies", p."router_settings", p."access_group_ids", p."budget_id", p."object_permission_id", p."key_type", p."auto_rotate", p."rotation_interval", p."key_rotation_at", now()::timestamp(3), $3::text
     FROM jsonb_populate_record(t, $2::jsonb) p)
WHERE t."token" = $1
RETURNING to_jsonb(t);

-- name: ListKeys
-- $1 user_id, $2 team_id, $3 organization_id, $4 key_alias, $5 token (each optional), $6 limit, $7 offset
SELECT to_jsonb(t) FROM "TianjiLLM_VerificationToken" t
WHERE ($1::text IS NULL OR t."user_id" = $1)
  AND ($2::text IS NULL OR t."team_id" = $2)
  AND ($3::text IS NULL OR t."organization_id" = $3)
  AND ($4::text IS NULL OR t."key_alias" = $4)
  AND ($5::text IS NULL OR t."token" = $5)
ORDER BY t."created_at" DESC NULLS LAST, t."token"
LIMIT $6 OFFSET $7;

-- name: CountKeys
SELECT count(*) FROM "TianjiLLM_VerificationToken" t
WHERE ($1::text IS NULL OR t."user_id" = $1)
  AND ($2::text IS NULL OR t."team_id" = $2)
  AND ($3::text IS NULL OR t."organization_id" = $3)
  AND ($4::text IS NULL OR t."key_alias" = $4)
  AND ($5::text IS NULL OR t."token" = $5);

-- name: ListKeyAliases
-- $1 search substring (optional), $2 team_id (optional), $3 limit, $4 offset
SELECT DISTINCT t."key_alias" FROM "TianjiLLM_VerificationToken" t
WHERE t."key_alias" IS NOT NULL
  AND ($1::text IS NULL OR t."key_alias" ILIKE '%' || $1 || '%')
  AND ($2::text IS NULL OR t."team_id" = $2)
ORDER BY t."key_alias"
LIMIT $3 OFFSET $4;

-- name: CountKeyAliases
SELECT count(DISTINCT t."key_alias") FROM "TianjiLLM_VerificationToken" t
WHERE t."key_alias" IS NOT NULL
  AND ($1::text IS NULL OR t."key_alias" ILIKE '%' || $1 || '%')
  AND ($2::text IS NULL OR t."team_id" = $2);

-- name: ResetKeySpend
-- $1 token, $2 new spend; returns the row before and after.
UPDATE "TianjiLLM_VerificationToken" AS t
SET "spend" = $2, "updated_at" = now()::timestamp(3)
FROM (SELECT "spend" AS previous FROM "TianjiLLM_VerificationToken" WHERE "token" = $1 FOR UPDATE) AS old
WHERE t."token" = $1
RETURNING old.previous, to_jsonb(t);

-- name: RotateKey
-- $1 old token, $2 new token, $3 new key_name, $4 updated_by
UPDATE "TianjiLLM_VerificationToken" AS t
SET "token" = $2, "key_name" = $3, "rotation_count" = COALESCE(t."rotation_count", 0) + 1,
    "last_rotation_at" = now()::timestamp(3), "updated_at" = now()::timestamp(3), "updated_by" = $4
WHERE t."token" = $1
RETURNING to_jsonb(t);
