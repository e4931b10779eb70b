-- 0011_message_batches.sql: Anthropic message batches created through the gateway
-- (`/v1/messages/batches`): who owns each one (the same user and team its sealed id names) and
-- which deployment holds it, so a caller lists only its own batches, and when the spend of its
-- results was booked (once per batch).
CREATE TABLE IF NOT EXISTS "TianjiLLM_MessageBatchTable" (
    "model_id"        TEXT NOT NULL,
    "batch_id"        TEXT NOT NULL,
    "model_group"     TEXT NOT NULL,
    "user_id"         TEXT NOT NULL DEFAULT '',
    "team_id"         TEXT NOT NULL DEFAULT '',
    "created_at"      TIMESTAMP(3) NOT NULL DEFAULT now(),
    "spend_booked_at" TIMESTAMP(3),
    PRIMARY KEY ("model_id", "batch_id")
);
CREATE INDEX IF NOT EXISTS "TianjiLLM_MessageBatchTable_owner_idx"
    ON "TianjiLLM_MessageBatchTable" ("user_id", "team_id", "created_at" DESC);
