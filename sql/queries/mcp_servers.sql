-- Upstream MCP servers ("TianjiLLM_MCPServerTable"). Rows travel as JSON; `credentials` and
-- `static_headers` values stay sealed here (opened by crate::mcp::stored and the admin API).

-- name: ListMcpServers
SELECT to_jsonb(s) FROM "TianjiLLM_MCPServerTable" s
ORDER BY s."created_at", s."server_id";

-- name: GetMcpServerById
-- $1: a list of server ids
SELECT to_jsonb(s) FROM "TianjiLLM_MCPServerTable" s WHERE s."server_id" = ANY($1);

-- name: GetMcpServerForUpdate
-- $1: a list of server ids
SELECT to_jsonb(s) FROM "TianjiLLM_MCPServerTable" s WHERE s."server_id" = ANY($1) FOR UPDATE;

-- name: GetMcpServerByName
SELECT s."server_id" FROM "TianjiLLM_MCPServerTable" s WHERE s."server_name" = $1;

-- name: InsertMcpServer
-- $1: the new row as JSON (columns by name); unspecified columns take the defaults below.
INSERT INTO "TianjiLLM_MCPServerTable"
SELECT * FROM jsonb_populate_record(
    NULL::"TianjiLLM_MCPServerTable",
    jsonb_build_object(
        'server_id', gen_random_uuid()::text, 'transport', 'sse', 'credentials', '{}'::jsonb,
        'mcp_info', '{}'::jsonb, 'mcp_access_groups', '[]'::jsonb, 'allowed_tools', '[]'::jsonb,
        'tool_name_to_display_name', '{}'::jsonb, 'tool_name_to_description', '{}'::jsonb,
        'extra_headers', '[]'::jsonb, 'static_headers', '{}'::jsonb, 'status', 'unknown',
        'args', '[]'::jsonb, 'env', '{}'::jsonb, 'allow_all_keys', false,
        'available_on_public_internet', true, 'delegate_auth_to_upstream', false,
        'is_byok', false, 'byok_description', '[]'::jsonb, 'approval_status', 'active',
        'created_at', now()::timestamp(3), 'updated_at', now()::timestamp(3)
    ) || $1
)
RETURNING to_jsonb("TianjiLLM_MCPServerTable".*);

-- name: UpdateMcpServer
-- $1 server_id, $2 the whole new row as JSON (the old row with the changes applied).
UPDATE "TianjiLLM_MCPServerTable" s
SET ("server_name", "alias", "description", "instructions", "url", "spec_path", "transport", "auth_type", "credentials", "mcp_info", "mcp_access_groups", "allowed_tools", "tool_name_to_display_name", "tool_name_to_description", "extra_headers", "static_headers", "authorization_url", "token_url", "registration_url", "allow_all_keys", "available_on_public_internet", "delegate_auth_to_upstream", "updated_by", "updated_at")
  = (SELECT p."server_name", p."alias", p."description", p."instructions", p."url", p."spec_path", p."transport", p."auth_type", p."credentials", p."mcp_info", p."mcp_access_groups", p."allowed_tools", p."tool_name_to_display_name", p."tool_name_to_description", p."extra_headers", p."static_headers", p."authorization_url", p."token_url", p."registration_url", p."allow_all_keys", p."available_on_public_internet", p."delegate_auth_to_upstream", p."updated_by", now()::timestamp(3)
     FROM jsonb_populate_record(NULL::"TianjiLLM_MCPServerTable", $2) p)
WHERE s."server_id" = $1
RETURNING to_jsonb(s);

-- name: DeleteMcpServer
-- $1: a list of server ids
DELETE FROM "TianjiLLM_MCPServerTable" s WHERE s."server_id" = ANY($1)
RETURNING to_jsonb(s);
