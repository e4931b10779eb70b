-- Claude Code plugins ("TianjiLLM_ClaudeCodePluginTable"). Rows travel as JSON.

-- name: ListPlugins
SELECT to_jsonb(p) FROM "TianjiLLM_ClaudeCodePluginTable" p ORDER BY p."name";

-- name: GetPluginForUpdate
-- $1: a list of plugin names
SELECT to_jsonb(p) FROM "TianjiLLM_ClaudeCodePluginTable" p WHERE p."name" = ANY($1) FOR UPDATE;

-- name: InsertPlugin
-- $1: the new row as JSON (columns by name).
INSERT INTO "TianjiLLM_ClaudeCodePluginTable"
SELECT * FROM jsonb_populate_record(
    NULL::"TianjiLLM_ClaudeCodePluginTable",
    jsonb_build_object(
        'id', gen_random_uuid()::text, 'version', '1.0.0', 'manifest_json', '{}'::jsonb,
        'enabled', true, 'created_at', now()::timestamp(3), 'updated_at', now()::timestamp(3)
    ) || $1
)
RETURNING to_jsonb("TianjiLLM_ClaudeCodePluginTable".*);

-- name: UpdatePlugin
-- $1 name, $2 the whole new row as JSON (the old row with the changes applied).
UPDATE "TianjiLLM_ClaudeCodePluginTable" t
SET ("version", "description", "manifest_json", "enabled", "source", "source_url", "updated_at")
  = (SELECT p."version", p."description", p."manifest_json", p."enabled", p."source", p."source_url", now()::timestamp(3)
     FROM jsonb_populate_record(NULL::"TianjiLLM_ClaudeCodePluginTable", $2) p)
WHERE t."name" = $1
RETURNING to_jsonb(t);

-- name: DeletePlugin
-- $1: a list of plugin names
DELETE FROM "TianjiLLM_ClaudeCodePluginTable" p WHERE p."name" = ANY($1)
RETURNING to_jsonb(p);
