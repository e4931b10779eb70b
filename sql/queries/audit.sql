-- The audit log ("TianjiLLM_AuditLog"), written in the same transaction as the change.

-- name: InsertAuditLog
-- $1 changed_by, $2 changed_by_api_key, $3 action, $4 table_name, $5 object_id,
-- $6 before_value, $7 updated_values
INSERT INTO "TianjiLLM_AuditLog"
    ("id", "updated_at", "changed_by", "changed_by_api_key", "action", "table_name", "object_id", "before_value", "updated_values")
VALUES (gen_random_uuid()::text, now()::timestamp(3), $1, $2, $3, $4, $5, $6, $7);
