-- Liveness of the database connection.

-- name: Ping
SELECT 1;

-- name: InsertHealthCheck
-- $1 model_name, $2 model_id, $3 status, $4 error_message, $5 response_time_ms, $6 details, $7 checked_by
INSERT INTO "TianjiLLM_HealthCheckTable"
    ("model_name", "model_id", "status", "healthy_count", "unhealthy_count", "error_message",
     "response_time_ms", "details", "checked_by")
VALUES ($1, $2, $3, CASE WHEN $3 = 'healthy' THEN 1 ELSE 0 END,
        CASE WHEN $3 = 'healthy' THEN 0 ELSE 1 END, $4, $5, $6, $7);

-- name: ListHealthChecks
-- $1 model_name (NULL: all), $2 status (NULL: all), $3 limit, $4 offset
SELECT to_jsonb(h) - 'created_at' - 'updated_at', count(*) OVER ()
FROM "TianjiLLM_HealthCheckTable" h
WHERE ($1::text IS NULL OR h."model_name" = $1) AND ($2::text IS NULL OR h."status" = $2)
ORDER BY h."checked_at" DESC, h."health_check_id"
LIMIT $3 OFFSET $4;
