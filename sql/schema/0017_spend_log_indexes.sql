-- 0017_spend_log_indexes.sql: a SpendLogs index that costs every insert and serves no query.
-- Every index is updated for every row the spend writer stores (the largest part of
-- PostgreSQL's CPU per request; see docs/benchmarks.md, "Spend writer").
-- "startTime_idx" duplicates the leading column of "startTime_request_id_idx", which serves
-- every query on a startTime range (and its ordering) as well. Dropping it is instant.

DROP INDEX IF EXISTS "TianjiLLM_SpendLogs_startTime_idx";
