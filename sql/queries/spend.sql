-- Spend accounting: one spend-writer flush is one transaction: the batch's SpendLogs rows (binary
-- COPY), then the roll-ups, which the writer has already summed per entity (and per daily-table
-- key) and passes as parallel arrays. Zero-cost requests touch no entity row.

-- name: ExistingSpendLogs
-- Which of these request ids (answers' ids a batch would store as request_id) rows already
-- have: those rows get their call id instead. Asked about cached answers' ids, or about all
-- after a COPY collided (src/spend/writer.rs).
SELECT "request_id" FROM "TianjiLLM_SpendLogs" WHERE "request_id" = ANY($1::text[]);

-- name: StoredSpendLogCalls
-- Call ids of a batch that an earlier, failed-looking flush did store (retry after an
-- ambiguous commit).
SELECT "litellm_call_id" FROM "TianjiLLM_SpendLogs" WHERE "litellm_call_id" = ANY($1::text[]);

-- name: CopySpendLogs
-- Binary COPY of a batch's rows; the columns left out take their defaults.
COPY "TianjiLLM_SpendLogs"
    ("request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens",
     "completion_tokens", "startTime", "endTime", "request_duration_ms", "completionStartTime",
     "model", "model_id", "model_group", "custom_llm_provider", "api_base", "user", "metadata",
     "cache_hit", "cache_key", "team_id", "organization_id", "end_user", "requester_ip_address",
     "status", "litellm_call_id", "mcp_namespaced_tool_name", "agent_id", "request_tags",
     "messages", "response")
FROM STDIN BINARY;

-- name: CopySpendLogsLean
-- CopySpendLogs without its last three columns, for a batch whose rows all have no tags and
-- keep no bodies: their defaults ('[]', '{}', '{}') are the values it would send, and the
-- database does not parse three JSON documents per row.
COPY "TianjiLLM_SpendLogs"
    ("request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens",
     "completion_tokens", "startTime", "endTime", "request_duration_ms", "completionStartTime",
     "model", "model_id", "model_group", "custom_llm_provider", "api_base", "user", "metadata",
     "cache_hit", "cache_key", "team_id", "organization_id", "end_user", "requester_ip_address",
     "status", "litellm_call_id", "mcp_namespaced_tool_name", "agent_id")
FROM STDIN BINARY;

-- name: FlushKeySpend
-- $1 key hashes, $2 amounts.
UPDATE "TianjiLLM_VerificationToken" t SET "spend" = t."spend" + u.amount
FROM unnest($1::text[], $2::float8[]) AS u(id, amount) WHERE t."token" = u.id;

-- name: FlushUserSpend
UPDATE "TianjiLLM_UserTable" t SET "spend" = t."spend" + u.amount
FROM unnest($1::text[], $2::float8[]) AS u(id, amount) WHERE t."user_id" = u.id;

-- name: FlushTeamSpend
UPDATE "TianjiLLM_TeamTable" t SET "spend" = t."spend" + u.amount
FROM unnest($1::text[], $2::float8[]) AS u(id, amount) WHERE t."team_id" = u.id;

-- name: FlushOrganizationSpend
UPDATE "TianjiLLM_OrganizationTable" t SET "spend" = t."spend" + u.amount
FROM unnest($1::text[], $2::float8[]) AS u(id, amount) WHERE t."organization_id" = u.id;

-- name: FlushTeamMemberSpend
-- $1 team ids, $2 user ids, $3 amounts.
UPDATE "TianjiLLM_TeamMembership" t
SET "spend" = t."spend" + u.amount, "total_spend" = t."total_spend" + u.amount
FROM unnest($1::text[], $2::text[], $3::float8[]) AS u(team_id, user_id, amount)
WHERE t."team_id" = u.team_id AND t."user_id" = u.user_id;

-- name: FlushEndUserSpend
-- End users are created on first use, as LiteLLM does; a free call leaves an existing row
-- alone (no new row version for adding 0).
INSERT INTO "TianjiLLM_EndUserTable" AS t ("user_id", "spend")
SELECT u.id, u.amount FROM unnest($1::text[], $2::float8[]) AS u(id, amount)
ON CONFLICT ("user_id") DO UPDATE SET "spend" = t."spend" + EXCLUDED."spend"
WHERE EXCLUDED."spend" <> 0;

-- name: FlushTagSpend
INSERT INTO "TianjiLLM_TagTable" AS t ("tag_name", "spend", "created_at", "updated_at")
SELECT u.id, u.amount, now()::timestamp(3), now()::timestamp(3)
FROM unnest($1::text[], $2::float8[]) AS u(id, amount)
ON CONFLICT ("tag_name") DO UPDATE SET "spend" = t."spend" + EXCLUDED."spend"
WHERE EXCLUDED."spend" <> 0;

-- name: FlushAgentSpend
-- $1 agent ids, $2 amounts.
UPDATE "TianjiLLM_AgentsTable" a SET "spend" = a."spend" + u.amount
FROM unnest($1::text[], $2::float8[]) AS u(id, amount)
WHERE a."agent_id" = u.id;

-- name: FlushDailyUserSpend
-- Parallel arrays, one element per ("user_id", date, api_key, model, custom_llm_provider, endpoint, mcp_namespaced_tool_name).
INSERT INTO "TianjiLLM_DailyUserSpend" AS d
    ("user_id", "date", "api_key", "model", "model_group", "custom_llm_provider",
     "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
     "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
     "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
     "created_at", "updated_at")
SELECT u.entity, u.day, u.api_key, u.model, u.model_group, u.provider, u.tool, u.endpoint,
       u.prompt, u.completion, u.cache_read, u.cache_creation, u.spend, u.requests, u.ok,
       u.failed, u.ms, u.requests, now()::timestamp(3), now()::timestamp(3)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::float8[], $13::int8[],
            $14::int8[], $15::int8[], $16::int8[], $17::text[])
    AS u(entity, day, api_key, model, model_group, provider, endpoint, prompt, completion,
         cache_read, cache_creation, spend, requests, ok, failed, ms, tool)
ON CONFLICT ("user_id", "date", "api_key", "model", "custom_llm_provider",
             "mcp_namespaced_tool_name", "endpoint")
DO UPDATE SET
    "prompt_tokens" = d."prompt_tokens" + EXCLUDED."prompt_tokens",
    "completion_tokens" = d."completion_tokens" + EXCLUDED."completion_tokens",
    "cache_read_input_tokens" = d."cache_read_input_tokens" + EXCLUDED."cache_read_input_tokens",
    "cache_creation_input_tokens" = d."cache_creation_input_tokens" + EXCLUDED."cache_creation_input_tokens",
    "spend" = d."spend" + EXCLUDED."spend",
    "api_requests" = d."api_requests" + EXCLUDED."api_requests",
    "successful_requests" = d."successful_requests" + EXCLUDED."successful_requests",
    "failed_requests" = d."failed_requests" + EXCLUDED."failed_requests",
    "total_response_time_ms" = d."total_response_time_ms" + EXCLUDED."total_response_time_ms",
    "timed_requests" = d."timed_requests" + EXCLUDED."timed_requests",
    "updated_at" = EXCLUDED."updated_at";

-- name: FlushDailyTeamSpend
-- Parallel arrays, one element per ("team_id", date, api_key, model, custom_llm_provider, endpoint, mcp_namespaced_tool_name).
INSERT INTO "TianjiLLM_DailyTeamSpend" AS d
    ("team_id", "date", "api_key", "model", "model_group", "custom_llm_provider",
     "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
     "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
     "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
     "created_at", "updated_at")
SELECT u.entity, u.day, u.api_key, u.model, u.model_group, u.provider, u.tool, u.endpoint,
       u.prompt, u.completion, u.cache_read, u.cache_creation, u.spend, u.requests, u.ok,
       u.failed, u.ms, u.requests, now()::timestamp(3), now()::timestamp(3)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::float8[], $13::int8[],
            $14::int8[], $15::int8[], $16::int8[], $17::text[])
    AS u(entity, day, api_key, model, model_group, provider, endpoint, prompt, completion,
         cache_read, cache_creation, spend, requests, ok, failed, ms, tool)
ON CONFLICT ("team_id", "date", "api_key", "model", "custom_llm_provider",
             "mcp_namespaced_tool_name", "endpoint")
DO UPDATE SET
    "prompt_tokens" = d."prompt_tokens" + EXCLUDED."prompt_tokens",
    "completion_tokens" = d."completion_tokens" + EXCLUDED."completion_tokens",
    "cache_read_input_tokens" = d."cache_read_input_tokens" + EXCLUDED."cache_read_input_tokens",
    "cache_creation_input_tokens" = d."cache_creation_input_tokens" + EXCLUDED."cache_creation_input_tokens",
    "spend" = d."spend" + EXCLUDED."spend",
    "api_requests" = d."api_requests" + EXCLUDED."api_requests",
    "successful_requests" = d."successful_requests" + EXCLUDED."successful_requests",
    "failed_requests" = d."failed_requests" + EXCLUDED."failed_requests",
    "total_response_time_ms" = d."total_response_time_ms" + EXCLUDED."total_response_time_ms",
    "timed_requests" = d."timed_requests" + EXCLUDED."timed_requests",
    "updated_at" = EXCLUDED."updated_at";

-- name: FlushDailyAgentSpend
-- Parallel arrays, one element per ("agent_id", date, api_key, model, custom_llm_provider, endpoint, mcp_namespaced_tool_name).
INSERT INTO "TianjiLLM_DailyAgentSpend" AS d
    ("agent_id", "date", "api_key", "model", "model_group", "custom_llm_provider",
     "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
     "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
     "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
     "created_at", "updated_at")
SELECT u.entity, u.day, u.api_key, u.model, u.model_group, u.provider, u.tool, u.endpoint,
       u.prompt, u.completion, u.cache_read, u.cache_creation, u.spend, u.requests, u.ok,
       u.failed, u.ms, u.requests, now()::timestamp(3), now()::timestamp(3)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::float8[], $13::int8[],
            $14::int8[], $15::int8[], $16::int8[], $17::text[])
    AS u(entity, day, api_key, model, model_group, provider, endpoint, prompt, completion,
         cache_read, cache_creation, spend, requests, ok, failed, ms, tool)
ON CONFLICT ("agent_id", "date", "api_key", "model", "custom_llm_provider",
             "mcp_namespaced_tool_name", "endpoint")
DO UPDATE SET
    "prompt_tokens" = d."prompt_tokens" + EXCLUDED."prompt_tokens",
    "completion_tokens" = d."completion_tokens" + EXCLUDED."completion_tokens",
    "cache_read_input_tokens" = d."cache_read_input_tokens" + EXCLUDED."cache_read_input_tokens",
    "cache_creation_input_tokens" = d."cache_creation_input_tokens" + EXCLUDED."cache_creation_input_tokens",
    "spend" = d."spend" + EXCLUDED."spend",
    "api_requests" = d."api_requests" + EXCLUDED."api_requests",
    "successful_requests" = d."successful_requests" + EXCLUDED."successful_requests",
    "failed_requests" = d."failed_requests" + EXCLUDED."failed_requests",
    "total_response_time_ms" = d."total_response_time_ms" + EXCLUDED."total_response_time_ms",
    "timed_requests" = d."timed_requests" + EXCLUDED."timed_requests",
    "updated_at" = EXCLUDED."updated_at";

-- name: FlushDailyOrganizationSpend
-- Parallel arrays, one element per ("organization_id", date, api_key, model, custom_llm_provider, endpoint, mcp_namespaced_tool_name).
INSERT INTO "TianjiLLM_DailyOrganizationSpend" AS d
    ("organization_id", "date", "api_key", "model", "model_group", "custom_llm_provider",
     "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
     "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
     "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
     "created_at", "updated_at")
SELECT u.entity, u.day, u.api_key, u.model, u.model_group, u.provider, u.tool, u.endpoint,
       u.prompt, u.completion, u.cache_read, u.cache_creation, u.spend, u.requests, u.ok,
       u.failed, u.ms, u.requests, now()::timestamp(3), now()::timestamp(3)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::float8[], $13::int8[],
            $14::int8[], $15::int8[], $16::int8[], $17::text[])
    AS u(entity, day, api_key, model, model_group, provider, endpoint, prompt, completion,
         cache_read, cache_creation, spend, requests, ok, failed, ms, tool)
ON CONFLICT ("organization_id", "date", "api_key", "model", "custom_llm_provider",
             "mcp_namespaced_tool_name", "endpoint")
DO UPDATE SET
    "prompt_tokens" = d."prompt_tokens" + EXCLUDED."prompt_tokens",
    "completion_tokens" = d."completion_tokens" + EXCLUDED."completion_tokens",
    "cache_read_input_tokens" = d."cache_read_input_tokens" + EXCLUDED."cache_read_input_tokens",
    "cache_creation_input_tokens" = d."cache_creation_input_tokens" + EXCLUDED."cache_creation_input_tokens",
    "spend" = d."spend" + EXCLUDED."spend",
    "api_requests" = d."api_requests" + EXCLUDED."api_requests",
    "successful_requests" = d."successful_requests" + EXCLUDED."successful_requests",
    "failed_requests" = d."failed_requests" + EXCLUDED."failed_requests",
    "total_response_time_ms" = d."total_response_time_ms" + EXCLUDED."total_response_time_ms",
    "timed_requests" = d."timed_requests" + EXCLUDED."timed_requests",
    "updated_at" = EXCLUDED."updated_at";

-- name: FlushDailyEndUserSpend
-- Parallel arrays, one element per ("end_user_id", date, api_key, model, custom_llm_provider, endpoint, mcp_namespaced_tool_name).
INSERT INTO "TianjiLLM_DailyEndUserSpend" AS d
    ("end_user_id", "date", "api_key", "model", "model_group", "custom_llm_provider",
     "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
     "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
     "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
     "created_at", "updated_at")
SELECT u.entity, u.day, u.api_key, u.model, u.model_group, u.provider, u.tool, u.endpoint,
       u.prompt, u.completion, u.cache_read, u.cache_creation, u.spend, u.requests, u.ok,
       u.failed, u.ms, u.requests, now()::timestamp(3), now()::timestamp(3)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::float8[], $13::int8[],
            $14::int8[], $15::int8[], $16::int8[], $17::text[])
    AS u(entity, day, api_key, model, model_group, provider, endpoint, prompt, completion,
         cache_read, cache_creation, spend, requests, ok, failed, ms, tool)
ON CONFLICT ("end_user_id", "date", "api_key", "model", "custom_llm_provider",
             "mcp_namespaced_tool_name", "endpoint")
DO UPDATE SET
    "prompt_tokens" = d."prompt_tokens" + EXCLUDED."prompt_tokens",
    "completion_tokens" = d."completion_tokens" + EXCLUDED."completion_tokens",
    "cache_read_input_tokens" = d."cache_read_input_tokens" + EXCLUDED."cache_read_input_tokens",
    "cache_creation_input_tokens" = d."cache_creation_input_tokens" + EXCLUDED."cache_creation_input_tokens",
    "spend" = d."spend" + EXCLUDED."spend",
    "api_requests" = d."api_requests" + EXCLUDED."api_requests",
    "successful_requests" = d."successful_requests" + EXCLUDED."successful_requests",
    "failed_requests" = d."failed_requests" + EXCLUDED."failed_requests",
    "total_response_time_ms" = d."total_response_time_ms" + EXCLUDED."total_response_time_ms",
    "timed_requests" = d."timed_requests" + EXCLUDED."timed_requests",
    "updated_at" = EXCLUDED."updated_at";

-- name: FlushDailyTagSpend
-- Parallel arrays, one element per ("tag", date, api_key, model, custom_llm_provider, endpoint, mcp_namespaced_tool_name).
INSERT INTO "TianjiLLM_DailyTagSpend" AS d
    ("tag", "date", "api_key", "model", "model_group", "custom_llm_provider",
     "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
     "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
     "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
     "created_at", "updated_at")
SELECT u.entity, u.day, u.api_key, u.model, u.model_group, u.provider, u.tool, u.endpoint,
       u.prompt, u.completion, u.cache_read, u.cache_creation, u.spend, u.requests, u.ok,
       u.failed, u.ms, u.requests, now()::timestamp(3), now()::timestamp(3)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::float8[], $13::int8[],
            $14::int8[], $15::int8[], $16::int8[], $17::text[])
    AS u(entity, day, api_key, model, model_group, provider, endpoint, prompt, completion,
         cache_read, cache_creation, spend, requests, ok, failed, ms, tool)
ON CONFLICT ("tag", "date", "api_key", "model", "custom_llm_provider",
             "mcp_namespaced_tool_name", "endpoint")
DO UPDATE SET
    "prompt_tokens" = d."prompt_tokens" + EXCLUDED."prompt_tokens",
    "completion_tokens" = d."completion_tokens" + EXCLUDED."completion_tokens",
    "cache_read_input_tokens" = d."cache_read_input_tokens" + EXCLUDED."cache_read_input_tokens",
    "cache_creation_input_tokens" = d."cache_creation_input_tokens" + EXCLUDED."cache_creation_input_tokens",
    "spend" = d."spend" + EXCLUDED."spend",
    "api_requests" = d."api_requests" + EXCLUDED."api_requests",
    "successful_requests" = d."successful_requests" + EXCLUDED."successful_requests",
    "failed_requests" = d."failed_requests" + EXCLUDED."failed_requests",
    "total_response_time_ms" = d."total_response_time_ms" + EXCLUDED."total_response_time_ms",
    "timed_requests" = d."timed_requests" + EXCLUDED."timed_requests",
    "updated_at" = EXCLUDED."updated_at";

-- name: InsertErrorLogs
-- The failures of a batch, as parallel arrays: $1 request ids, $2 start and $3 end (Unix
-- seconds), $4 api bases, $5 model groups, $6 model names, $7 model ids, $8 request kwargs
-- (JSON text), $9 exception types, $10 exception strings, $11 status codes.
INSERT INTO "TianjiLLM_ErrorLogs"
    ("request_id", "startTime", "endTime", "api_base", "model_group", "litellm_model_name",
     "model_id", "request_kwargs", "exception_type", "exception_string", "status_code")
SELECT u.id, to_timestamp(u.st) AT TIME ZONE 'UTC', to_timestamp(u.et) AT TIME ZONE 'UTC',
       u.base, u.grp, u.name, u.mid, u.kw::jsonb, u.typ, u.msg, u.code
FROM unnest($1::text[], $2::float8[], $3::float8[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
    AS u(id, st, et, base, grp, name, mid, kw, typ, msg, code)
ON CONFLICT ("request_id") DO NOTHING;
