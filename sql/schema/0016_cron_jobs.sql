-- 0016_cron_jobs.sql: the scheduler's jobs. "TianjiLLM_CronJob" is LiteLLM's LiteLLM_CronJob
-- (cronjob_id, pod_id, status ACTIVE/INACTIVE, last_updated, ttl = when the holder's lease
-- ends; status as text, not a Postgres enum) plus the job's own schedule and last outcome:
-- `due_at` is when its next run is due, so every instance agrees on the period being run.
-- "TianjiLLM_CronJobRun" records each finished run, one row per job and due time.

CREATE TABLE IF NOT EXISTS "TianjiLLM_CronJob" (
    "cronjob_id"       TEXT NOT NULL,
    "pod_id"           TEXT NOT NULL DEFAULT '',
    "status"           TEXT NOT NULL DEFAULT 'INACTIVE',
    "last_updated"     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "ttl"              TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "due_at"           TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "runs"             BIGINT NOT NULL DEFAULT 0,
    "last_started_at"  TIMESTAMP(3),
    "last_finished_at" TIMESTAMP(3),
    "last_status"      TEXT,
    "last_result"      JSONB,

    CONSTRAINT "TianjiLLM_CronJob_pkey" PRIMARY KEY ("cronjob_id"),
    CONSTRAINT "TianjiLLM_CronJob_status_check" CHECK ("status" IN ('ACTIVE', 'INACTIVE'))
);

CREATE TABLE IF NOT EXISTS "TianjiLLM_CronJobRun" (
    "cronjob_id"  TEXT NOT NULL,
    "due_at"      TIMESTAMP(3) NOT NULL,
    "pod_id"      TEXT NOT NULL,
    "started_at"  TIMESTAMP(3) NOT NULL,
    "finished_at" TIMESTAMP(3) NOT NULL,
    "status"      TEXT NOT NULL,
    "result"      JSONB,

    CONSTRAINT "TianjiLLM_CronJobRun_pkey" PRIMARY KEY ("cronjob_id", "due_at")
);
CREATE INDEX IF NOT EXISTS "TianjiLLM_CronJobRun_finished_at_idx"
    ON "TianjiLLM_CronJobRun" ("finished_at");

-- Audit-log retention (maximum_audit_logs_retention_period) deletes by age.
CREATE INDEX IF NOT EXISTS "TianjiLLM_AuditLog_updated_at_idx" ON "TianjiLLM_AuditLog" ("updated_at");
