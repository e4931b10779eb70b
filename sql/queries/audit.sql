-- The audit log ("TianjiLLM_AuditLog"), written in the same transaction as the change.

-- name: InsertAuditLog
-- $1 changed_by, $2 changed_by_api_key, $3 action, $4 table_name, $5 object_id,
-- $6 before_value, $7 updated_values
INSERT INTO "TianjiLLM_AuditLog"
    ("id", "updated_at", "changed_by", "changed_by_api_key", "action", "table_name", "object_id", "before_value", "updated_values")
VALUES (gen_random_uuid()::text, now()::timestamp(3), $1, $2, $3, $4, $5, $6, $7);

-- name: ListAuditLogs
-- Filters (each optional): $1 changed_by, $2 changed_by_api_key, $3 action, $4 table_name,
-- $5 object_id, $6 start (date or timestamp), $7 end (a date means the whole day);
-- $8 limit, $9 offset. Newest first.
SELECT to_jsonb(a) FROM "TianjiLLM_AuditLog" a
WHERE ($1::text IS NULL OR a."changed_by" = $1)
  AND ($2::text IS NULL OR a."changed_by_api_key" = $2)
  AND ($3::text IS NULL OR a."action" = $3)
  AND ($4::text IS NULL OR a."table_name" = $4)
  AND ($5::text IS NULL OR a."object_id" = $5)
  AND ($6::text IS NULL OR a."updated_at" >= $6::timestamp)
  AND ($7::text IS NULL OR a."updated_at" < $7::timestamp
        + CASE WHEN length($7) = 10 THEN interval '1 day' ELSE interval '0' END)
ORDER BY a."updated_at" DESC, a."id"
LIMIT $8 OFFSET $9;

-- name: CountAuditLogs
SELECT count(*) FROM "TianjiLLM_AuditLog" a
WHERE ($1::text IS NULL OR a."changed_by" = $1)
  AND ($2::text IS NULL OR a."changed_by_api_key" = $2)
  AND ($3::text IS NULL OR a."action" = $3)
  AND ($4::text IS NULL OR a."table_name" = $4)
  AND ($5::text IS NULL OR a."object_id" = $5)
  AND ($6::text IS NULL OR a."updated_at" >= $6::timestamp)
  AND ($7::text IS NULL OR a."updated_at" < $7::timestamp
        + CASE WHEN length($7) = 10 THEN interval '1 day' ELSE interval '0' END);

-- name: GetAuditLog
SELECT to_jsonb(a) FROM "TianjiLLM_AuditLog" a WHERE a."id" = $1;
