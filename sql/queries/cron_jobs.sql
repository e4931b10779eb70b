-- The scheduler (src/jobs/scheduler.rs). One row per job in "TianjiLLM_CronJob"; an instance
-- runs a job only while it holds the row's lease (status ACTIVE, its pod_id, ttl in the future)
-- and only for the due time the row names, so each due time is run once however many
-- instances there are; a lease whose holder died ends at ttl and another instance claims the
-- same due time. Times are UTC.

-- name: EnsureCronJob
-- $1 job id. A new job is due at once.
INSERT INTO "TianjiLLM_CronJob" ("cronjob_id", "due_at", "ttl", "last_updated")
VALUES ($1, (now() AT TIME ZONE 'UTC'), (now() AT TIME ZONE 'UTC'), (now() AT TIME ZONE 'UTC'))
ON CONFLICT ("cronjob_id") DO NOTHING;

-- name: ClaimCronJob
-- $1 job id, $2 this instance, $3 lease seconds, $4 the job's interval in seconds. Takes the
-- lease when the job is due and nobody holds a live lease; a due time further away than one
-- interval (the interval was shortened) counts as due now. Returns the due time being run.
UPDATE "TianjiLLM_CronJob"
SET "pod_id" = $2,
    "status" = 'ACTIVE',
    "last_updated" = (now() AT TIME ZONE 'UTC'),
    "ttl" = (now() AT TIME ZONE 'UTC') + make_interval(secs => $3::float8),
    "due_at" = LEAST("due_at", (now() AT TIME ZONE 'UTC')::timestamp(3))
WHERE "cronjob_id" = $1
  AND ("status" = 'INACTIVE' OR "ttl" < (now() AT TIME ZONE 'UTC'))
  AND ("due_at" <= (now() AT TIME ZONE 'UTC')
       OR "due_at" > (now() AT TIME ZONE 'UTC') + make_interval(secs => $4::float8))
RETURNING "due_at"::text;

-- name: RenewCronJob
-- $1 job id, $2 this instance, $3 lease seconds. No row: the lease was lost.
UPDATE "TianjiLLM_CronJob"
SET "ttl" = (now() AT TIME ZONE 'UTC') + make_interval(secs => $3::float8),
    "last_updated" = (now() AT TIME ZONE 'UTC')
WHERE "cronjob_id" = $1 AND "pod_id" = $2 AND "status" = 'ACTIVE'
RETURNING 1;

-- name: FinishCronJob
-- $1 job id, $2 this instance, $3 the due time run, $4 seconds until the next run, $5 when
-- the run started (Unix seconds), $6 'succeeded' or 'failed', $7 the outcome (JSON). Only the
-- holder of the lease for that due time can finish it; the run is recorded in the same
-- statement. No row: another instance took the job over.
WITH done AS (
    UPDATE "TianjiLLM_CronJob"
    SET "status" = 'INACTIVE',
        "last_updated" = (now() AT TIME ZONE 'UTC'),
        "ttl" = (now() AT TIME ZONE 'UTC'),
        "due_at" = (now() AT TIME ZONE 'UTC') + make_interval(secs => $4::float8),
        "runs" = "runs" + 1,
        "last_started_at" = (to_timestamp($5::float8) AT TIME ZONE 'UTC'),
        "last_finished_at" = (now() AT TIME ZONE 'UTC'),
        "last_status" = $6,
        "last_result" = $7
    WHERE "cronjob_id" = $1 AND "pod_id" = $2 AND "status" = 'ACTIVE'
      AND "due_at" = $3::text::timestamp(3)
    RETURNING "cronjob_id"
)
INSERT INTO "TianjiLLM_CronJobRun"
    ("cronjob_id", "due_at", "pod_id", "started_at", "finished_at", "status", "result")
SELECT "cronjob_id", $3::text::timestamp(3), $2, (to_timestamp($5::float8) AT TIME ZONE 'UTC'),
       (now() AT TIME ZONE 'UTC'), $6, $7
FROM done
RETURNING 1;

-- name: CronJobResult
-- $1 job id, $2 the run count this instance has seen. The latest result when there is a
-- newer run.
SELECT "runs", "last_result" FROM "TianjiLLM_CronJob"
WHERE "cronjob_id" = $1 AND "runs" <> $2;

-- name: ListCronJobs
SELECT jsonb_build_object(
    'cronjob_id', "cronjob_id", 'pod_id', "pod_id", 'status', "status",
    'last_updated', "last_updated", 'ttl', "ttl", 'due_at', "due_at", 'runs', "runs",
    'last_started_at', "last_started_at", 'last_finished_at', "last_finished_at",
    'last_status', "last_status")
FROM "TianjiLLM_CronJob" ORDER BY "cronjob_id";

-- name: PruneCronJobRuns
-- Run records older than 30 days.
DELETE FROM "TianjiLLM_CronJobRun"
WHERE "finished_at" < (now() AT TIME ZONE 'UTC') - interval '30 days';

-- name: DeleteOldSpendLogs
-- $1 cutoff (Unix seconds), $2 rows at most. One batch of SpendLogs rows older than the cutoff.
DELETE FROM "TianjiLLM_SpendLogs"
WHERE "request_id" IN (
    SELECT "request_id" FROM "TianjiLLM_SpendLogs"
    WHERE "startTime" < (to_timestamp($1::float8) AT TIME ZONE 'UTC')
    LIMIT $2);

-- name: DeleteOldErrorLogs
-- $1 cutoff (Unix seconds), $2 rows at most.
DELETE FROM "TianjiLLM_ErrorLogs"
WHERE "request_id" IN (
    SELECT "request_id" FROM "TianjiLLM_ErrorLogs"
    WHERE "startTime" < (to_timestamp($1::float8) AT TIME ZONE 'UTC')
    LIMIT $2);

-- name: DeleteOldAuditLogs
-- $1 cutoff (Unix seconds), $2 rows at most.
DELETE FROM "TianjiLLM_AuditLog"
WHERE "id" IN (
    SELECT "id" FROM "TianjiLLM_AuditLog"
    WHERE "updated_at" < (to_timestamp($1::float8) AT TIME ZONE 'UTC')
    LIMIT $2);
