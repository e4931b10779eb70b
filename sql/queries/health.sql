-- Liveness of the database connection.

-- name: Ping
SELECT 1;
