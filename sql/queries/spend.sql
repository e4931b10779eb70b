-- Spend accounting: one spend-writer flush (one transaction) runs every query of this file
-- whose name starts with Flush, each over the same batch ($1, see tianji_spend_batch), then
-- commits. Roll-ups add only what the batch cost; zero-cost rows touch no entity row.

-- name: ExistingSpendLogs
-- Request ids of a batch that an earlier, failed-looking flush did store (retry after an
-- ambiguous commit).
SELECT "request_id" FROM "TianjiLLM_SpendLogs" WHERE "request_id" = ANY($1::text[]);

-- name: FlushSpendLogs
INSERT INTO "TianjiLLM_SpendLogs"
    ("request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens",
     "completion_tokens", "startTime", "endTime", "request_duration_ms", "completionStartTime",
     "model", "model_id", "model_group", "custom_llm_provider", "api_base", "user", "metadata",
     "cache_hit", "cache_key", "request_tags", "team_id", "organization_id", "end_user",
     "requester_ip_address", "messages", "response", "session_id", "status", "litellm_call_id",
     "created_at", "updated_at")
SELECT b.request_id, b.call_type, b.api_key, b.spend, b.total_tokens, b.prompt_tokens,
       b.completion_tokens, b.start_time, b.end_time, b.request_duration_ms,
       b.completion_start_time, b.model, b.model_id, b.model_group, b.custom_llm_provider,
       b.api_base, COALESCE(b.user_id, ''), b.metadata, b.cache_hit, b.cache_key, b.request_tags,
       b.team_id, b.organization_id, b.end_user, b.requester_ip_address, b.messages, b.response,
       b.session_id, b.status, b.litellm_call_id, now()::timestamp(3), now()::timestamp(3)
FROM tianji_spend_batch($1) b
ON CONFLICT ("request_id") DO NOTHING;

-- name: FlushKeySpend
UPDATE "TianjiLLM_VerificationToken" t SET "spend" = t."spend" + s.spend
FROM (SELECT b.api_key, sum(b.spend) AS spend FROM tianji_spend_batch($1) b
      WHERE b.api_key <> '' GROUP BY b.api_key HAVING sum(b.spend) > 0) s
WHERE t."token" = s.api_key;

-- name: FlushUserSpend
UPDATE "TianjiLLM_UserTable" t SET "spend" = t."spend" + s.spend
FROM (SELECT b.user_id, sum(b.spend) AS spend FROM tianji_spend_batch($1) b
      WHERE b.user_id IS NOT NULL GROUP BY b.user_id HAVING sum(b.spend) > 0) s
WHERE t."user_id" = s.user_id;

-- name: FlushTeamSpend
UPDATE "TianjiLLM_TeamTable" t SET "spend" = t."spend" + s.spend
FROM (SELECT b.team_id, sum(b.spend) AS spend FROM tianji_spend_batch($1) b
      WHERE b.team_id IS NOT NULL GROUP BY b.team_id HAVING sum(b.spend) > 0) s
WHERE t."team_id" = s.team_id;

-- name: FlushTeamMemberSpend
UPDATE "TianjiLLM_TeamMembership" t
SET "spend" = t."spend" + s.spend, "total_spend" = t."total_spend" + s.spend
FROM (SELECT b.team_id, b.user_id, sum(b.spend) AS spend FROM tianji_spend_batch($1) b
      WHERE b.team_id IS NOT NULL AND b.user_id IS NOT NULL
      GROUP BY b.team_id, b.user_id HAVING sum(b.spend) > 0) s
WHERE t."team_id" = s.team_id AND t."user_id" = s.user_id;

-- name: FlushOrganizationSpend
UPDATE "TianjiLLM_OrganizationTable" t SET "spend" = t."spend" + s.spend
FROM (SELECT b.organization_id, sum(b.spend) AS spend FROM tianji_spend_batch($1) b
      WHERE b.organization_id IS NOT NULL GROUP BY b.organization_id HAVING sum(b.spend) > 0) s
WHERE t."organization_id" = s.organization_id;

-- name: FlushEndUserSpend
-- End users are created on first use, as LiteLLM does.
INSERT INTO "TianjiLLM_EndUserTable" AS t ("user_id", "spend")
SELECT b.end_user, sum(b.spend) FROM tianji_spend_batch($1) b
WHERE b.end_user IS NOT NULL GROUP BY b.end_user
ON CONFLICT ("user_id") DO UPDATE SET "spend" = t."spend" + EXCLUDED."spend";

-- name: FlushTagSpend
INSERT INTO "TianjiLLM_TagTable" AS t ("tag_name", "spend", "created_at", "updated_at")
SELECT tg.tag, sum(b.spend), now()::timestamp(3), now()::timestamp(3)
FROM tianji_spend_batch($1) b
CROSS JOIN LATERAL jsonb_array_elements_text(
    CASE WHEN jsonb_typeof(b.request_tags) = 'array' THEN b.request_tags ELSE '[]' END) AS tg(tag)
GROUP BY tg.tag
ON CONFLICT ("tag_name") DO UPDATE SET "spend" = t."spend" + EXCLUDED."spend";

-- name: FlushDailyUserSpend
INSERT INTO "TianjiLLM_DailyUserSpend" AS d
    ("user_id", "date", "api_key", "model", "model_group", "custom_llm_provider",
     "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
     "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
     "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
     "created_at", "updated_at")
SELECT b.user_id, b.day, b.api_key, b.model, max(b.model_group), b.custom_llm_provider, '',
       b.endpoint, sum(b.prompt_tokens), sum(b.completion_tokens),
       sum(b.cache_read_input_tokens), sum(b.cache_creation_input_tokens), sum(b.spend),
       count(*), count(*) FILTER (WHERE b.success), count(*) FILTER (WHERE NOT b.success),
       COALESCE(sum(b.request_duration_ms), 0), count(b.request_duration_ms),
       now()::timestamp(3), now()::timestamp(3)
FROM tianji_spend_batch($1) b
WHERE b.user_id IS NOT NULL
GROUP BY b.user_id, b.day, b.api_key, b.model, b.custom_llm_provider, b.endpoint
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
INSERT INTO "TianjiLLM_DailyTeamSpend" AS d
    ("team_id", "date", "api_key", "model", "model_group", "custom_llm_provider",
     "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
     "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
     "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
     "created_at", "updated_at")
SELECT b.team_id, b.day, b.api_key, b.model, max(b.model_group), b.custom_llm_provider, '',
       b.endpoint, sum(b.prompt_tokens), sum(b.completion_tokens),
       sum(b.cache_read_input_tokens), sum(b.cache_creation_input_tokens), sum(b.spend),
       count(*), count(*) FILTER (WHERE b.success), count(*) FILTER (WHERE NOT b.success),
       COALESCE(sum(b.request_duration_ms), 0), count(b.request_duration_ms),
       now()::timestamp(3), now()::timestamp(3)
FROM tianji_spend_batch($1) b
WHERE b.team_id IS NOT NULL
GROUP BY b.team_id, b.day, b.api_key, b.model, b.custom_llm_provider, b.endpoint
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

-- name: FlushDailyOrganizationSpend
INSERT INTO "TianjiLLM_DailyOrganizationSpend" AS d
    ("organization_id", "date", "api_key", "model", "model_group", "custom_llm_provider",
     "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
     "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
     "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
     "created_at", "updated_at")
SELECT b.organization_id, b.day, b.api_key, b.model, max(b.model_group), b.custom_llm_provider, '',
       b.endpoint, sum(b.prompt_tokens), sum(b.completion_tokens),
       sum(b.cache_read_input_tokens), sum(b.cache_creation_input_tokens), sum(b.spend),
       count(*), count(*) FILTER (WHERE b.success), count(*) FILTER (WHERE NOT b.success),
       COALESCE(sum(b.request_duration_ms), 0), count(b.request_duration_ms),
       now()::timestamp(3), now()::timestamp(3)
FROM tianji_spend_batch($1) b
WHERE b.organization_id IS NOT NULL
GROUP BY b.organization_id, b.day, b.api_key, b.model, b.custom_llm_provider, b.endpoint
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
INSERT INTO "TianjiLLM_DailyEndUserSpend" AS d
    ("end_user_id", "date", "api_key", "model", "model_group", "custom_llm_provider",
     "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
     "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
     "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
     "created_at", "updated_at")
SELECT b.end_user, b.day, b.api_key, b.model, max(b.model_group), b.custom_llm_provider, '',
       b.endpoint, sum(b.prompt_tokens), sum(b.completion_tokens),
       sum(b.cache_read_input_tokens), sum(b.cache_creation_input_tokens), sum(b.spend),
       count(*), count(*) FILTER (WHERE b.success), count(*) FILTER (WHERE NOT b.success),
       COALESCE(sum(b.request_duration_ms), 0), count(b.request_duration_ms),
       now()::timestamp(3), now()::timestamp(3)
FROM tianji_spend_batch($1) b
WHERE b.end_user IS NOT NULL
GROUP BY b.end_user, b.day, b.api_key, b.model, b.custom_llm_provider, b.endpoint
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
INSERT INTO "TianjiLLM_DailyTagSpend" AS d
    ("tag", "date", "api_key", "model", "model_group", "custom_llm_provider",
     "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
     "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
     "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
     "created_at", "updated_at")
SELECT t.tag, b.day, b.api_key, b.model, max(b.model_group), b.custom_llm_provider, '',
       b.endpoint, sum(b.prompt_tokens), sum(b.completion_tokens),
       sum(b.cache_read_input_tokens), sum(b.cache_creation_input_tokens), sum(b.spend),
       count(*), count(*) FILTER (WHERE b.success), count(*) FILTER (WHERE NOT b.success),
       COALESCE(sum(b.request_duration_ms), 0), count(b.request_duration_ms),
       now()::timestamp(3), now()::timestamp(3)
FROM tianji_spend_batch($1) b CROSS JOIN LATERAL jsonb_array_elements_text(
    CASE WHEN jsonb_typeof(b.request_tags) = 'array' THEN b.request_tags ELSE '[]' END) AS t(tag)
WHERE t.tag IS NOT NULL
GROUP BY t.tag, b.day, b.api_key, b.model, b.custom_llm_provider, b.endpoint
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
