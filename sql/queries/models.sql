-- Models added through the API ("TianjiLLM_ProxyModelTable"); they join routing at once.

-- name: ListProxyModels
SELECT to_jsonb(m) FROM "TianjiLLM_ProxyModelTable" m ORDER BY m."created_at", m."model_id";

-- name: InsertProxyModel
-- $1 model_id (NULL: generated), $2 model_name, $3 tianji_params, $4 model_info, $5 created_by
INSERT INTO "TianjiLLM_ProxyModelTable" ("model_id", "model_name", "tianji_params", "model_info", "created_by", "updated_by")
VALUES (COALESCE($1, gen_random_uuid()::text), $2, $3, $4, $5, $5)
RETURNING to_jsonb("TianjiLLM_ProxyModelTable".*);

-- name: GetProxyModel
SELECT to_jsonb(m) FROM "TianjiLLM_ProxyModelTable" m WHERE m."model_id" = $1 FOR UPDATE;

-- name: UpdateProxyModel
-- $1 model_id, $2 model_name, $3 tianji_params, $4 model_info, $5 updated_by
UPDATE "TianjiLLM_ProxyModelTable" m
SET "model_name" = $2, "tianji_params" = $3, "model_info" = $4, "updated_by" = $5, "updated_at" = now()::timestamp(3)
WHERE m."model_id" = $1
RETURNING to_jsonb(m);

-- name: DeleteProxyModel
DELETE FROM "TianjiLLM_ProxyModelTable" m WHERE m."model_id" = $1;

-- name: LockProxyModelParams
-- Every stored model's parameters, locked: startup encrypts credentials still in plain text.
SELECT m."model_id", m."tianji_params" FROM "TianjiLLM_ProxyModelTable" m ORDER BY m."model_id" FOR UPDATE;

-- name: SetProxyModelParams
-- $1 model_id, $2 tianji_params (the same values, stored encrypted: updated_at is kept)
UPDATE "TianjiLLM_ProxyModelTable" SET "tianji_params" = $2 WHERE "model_id" = $1;
