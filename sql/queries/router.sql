-- Router settings changed at run time ("TianjiLLM_Config").

-- name: GetConfigParam
-- $1 param_name
SELECT c."param_value" FROM "TianjiLLM_Config" c WHERE c."param_name" = $1;

-- name: PutConfigParam
-- $1 param_name, $2 param_value
INSERT INTO "TianjiLLM_Config" ("param_name", "param_value") VALUES ($1, $2)
ON CONFLICT ("param_name") DO UPDATE SET "param_value" = EXCLUDED."param_value";
