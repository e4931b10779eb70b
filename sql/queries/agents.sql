-- A2A agents ("TianjiLLM_AgentsTable"). Rows travel as JSON, with the agent's object permission
-- under `object_permission`.

-- name: ListAgents
SELECT to_jsonb(a) || jsonb_build_object('object_permission', to_jsonb(p))
FROM "TianjiLLM_AgentsTable" a
LEFT JOIN "TianjiLLM_ObjectPermissionTable" p ON p."object_permission_id" = a."object_permission_id"
ORDER BY a."created_at", a."agent_id";

-- name: GetAgentForUpdate
-- $1: a list of agent ids
SELECT to_jsonb(a) FROM "TianjiLLM_AgentsTable" a WHERE a."agent_id" = ANY($1) FOR UPDATE;

-- name: GetAgentByName
SELECT a."agent_id" FROM "TianjiLLM_AgentsTable" a WHERE a."agent_name" = $1;

-- name: InsertAgent
-- $1: the new row as JSON (columns by name); unspecified columns take the defaults below.
INSERT INTO "TianjiLLM_AgentsTable"
SELECT * FROM jsonb_populate_record(
    NULL::"TianjiLLM_AgentsTable",
    jsonb_build_object(
        'agent_id', gen_random_uuid()::text, 'agent_card_params', '{}'::jsonb,
        'extra_headers', '[]'::jsonb, 'agent_access_groups', '[]'::jsonb,
        'access_group_ids', '[]'::jsonb, 'spend', 0, 'identity_managed', false,
        'enabled', true, 'execution_mode', 'autonomous',
        'created_at', now()::timestamp(3), 'updated_at', now()::timestamp(3)
    ) || $1
)
RETURNING to_jsonb("TianjiLLM_AgentsTable".*);

-- name: UpdateAgent
-- $1 agent_id, $2 the whole new row as JSON (the old row with the changes applied).
UPDATE "TianjiLLM_AgentsTable" a
SET ("agent_name", "tianji_params", "agent_card_params", "static_headers", "extra_headers", "kill_switch", "agent_access_groups", "access_group_ids", "object_permission_id", "identity", "enabled", "execution_mode", "tpm_limit", "rpm_limit", "session_tpm_limit", "session_rpm_limit", "updated_by", "updated_at")
  = (SELECT p."agent_name", p."tianji_params", p."agent_card_params", p."static_headers", p."extra_headers", p."kill_switch", p."agent_access_groups", p."access_group_ids", p."object_permission_id", p."identity", p."enabled", p."execution_mode", p."tpm_limit", p."rpm_limit", p."session_tpm_limit", p."session_rpm_limit", p."updated_by", now()::timestamp(3)
     FROM jsonb_populate_record(NULL::"TianjiLLM_AgentsTable", $2) p)
WHERE a."agent_id" = $1
RETURNING to_jsonb(a);

-- name: DeleteAgent
-- $1: a list of agent ids
DELETE FROM "TianjiLLM_AgentsTable" a WHERE a."agent_id" = ANY($1)
RETURNING to_jsonb(a);
