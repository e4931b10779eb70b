-- Daily activity from the pre-aggregated daily tables (`date` is a 'YYYY-MM-DD' UTC day, both
-- bounds inclusive). Parameters: $1 start_date, $2 end_date, $3 entity ids (NULL = all),
-- $4 model, $5 api_key hash, $6 days per page, $7 days to skip (agents: $8 ids left out).
-- Pages are whole days, newest first; the metadata totals cover the whole range, not only the
-- page.

-- name: DailyUserActivity
WITH r AS (
    SELECT t.*, t."user_id" AS entity FROM "TianjiLLM_DailyUserSpend" t
    WHERE t."date" >= $1 AND t."date" <= $2
      AND ($3::text[] IS NULL OR t."user_id" = ANY($3::text[]))
      AND ($4::text IS NULL OR t."model" = $4)
      AND ($5::text IS NULL OR t."api_key" = $5)
), days AS (
    SELECT r.date FROM r GROUP BY r.date ORDER BY r.date DESC LIMIT $6 OFFSET $7
), d AS (
    SELECT days.date FROM days
)
SELECT jsonb_build_object(
    'results', COALESCE((SELECT jsonb_agg(jsonb_build_object(
        'date', d.date,
        'metrics', (SELECT jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) FROM r WHERE r.date = d.date),
        'breakdown', jsonb_build_object(
            'models', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.model, ''), 'unknown-model') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'model_groups', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.model_group, ''), NULLIF(r.model, ''), 'unknown-model-group') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'providers', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.custom_llm_provider, ''), 'unknown') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'endpoints', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.endpoint, ''), 'unknown') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'api_keys', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.api_key, ''), 'unattributed') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'entities', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(r.entity, 'Unassigned') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b)))
        ORDER BY d.date DESC) FROM d), '[]'),
    'metadata', (SELECT jsonb_build_object(
        'total_spend', COALESCE(sum(r.spend), 0),
        'total_prompt_tokens', COALESCE(sum(r.prompt_tokens), 0),
        'total_completion_tokens', COALESCE(sum(r.completion_tokens), 0),
        'total_tokens', COALESCE(sum(r.prompt_tokens + r.completion_tokens), 0),
        'total_api_requests', COALESCE(sum(r.api_requests), 0),
        'total_successful_requests', COALESCE(sum(r.successful_requests), 0),
        'total_failed_requests', COALESCE(sum(r.failed_requests), 0),
        'total_cache_read_input_tokens', COALESCE(sum(r.cache_read_input_tokens), 0),
        'total_cache_creation_input_tokens', COALESCE(sum(r.cache_creation_input_tokens), 0),
        'total_days', (SELECT count(DISTINCT r2.date) FROM r r2))
        FROM r));

-- name: DailyTeamActivity
WITH r AS (
    SELECT t.*, t."team_id" AS entity FROM "TianjiLLM_DailyTeamSpend" t
    WHERE t."date" >= $1 AND t."date" <= $2
      AND ($3::text[] IS NULL OR t."team_id" = ANY($3::text[]))
      AND ($4::text IS NULL OR t."model" = $4)
      AND ($5::text IS NULL OR t."api_key" = $5)
), days AS (
    SELECT r.date FROM r GROUP BY r.date ORDER BY r.date DESC LIMIT $6 OFFSET $7
), d AS (
    SELECT days.date FROM days
)
SELECT jsonb_build_object(
    'results', COALESCE((SELECT jsonb_agg(jsonb_build_object(
        'date', d.date,
        'metrics', (SELECT jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) FROM r WHERE r.date = d.date),
        'breakdown', jsonb_build_object(
            'models', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.model, ''), 'unknown-model') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'model_groups', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.model_group, ''), NULLIF(r.model, ''), 'unknown-model-group') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'providers', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.custom_llm_provider, ''), 'unknown') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'endpoints', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.endpoint, ''), 'unknown') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'api_keys', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.api_key, ''), 'unattributed') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'entities', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(r.entity, 'Unassigned') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b)))
        ORDER BY d.date DESC) FROM d), '[]'),
    'metadata', (SELECT jsonb_build_object(
        'total_spend', COALESCE(sum(r.spend), 0),
        'total_prompt_tokens', COALESCE(sum(r.prompt_tokens), 0),
        'total_completion_tokens', COALESCE(sum(r.completion_tokens), 0),
        'total_tokens', COALESCE(sum(r.prompt_tokens + r.completion_tokens), 0),
        'total_api_requests', COALESCE(sum(r.api_requests), 0),
        'total_successful_requests', COALESCE(sum(r.successful_requests), 0),
        'total_failed_requests', COALESCE(sum(r.failed_requests), 0),
        'total_cache_read_input_tokens', COALESCE(sum(r.cache_read_input_tokens), 0),
        'total_cache_creation_input_tokens', COALESCE(sum(r.cache_creation_input_tokens), 0),
        'total_days', (SELECT count(DISTINCT r2.date) FROM r r2))
        FROM r));

-- name: DailyOrganizationActivity
WITH r AS (
    SELECT t.*, t."organization_id" AS entity FROM "TianjiLLM_DailyOrganizationSpend" t
    WHERE t."date" >= $1 AND t."date" <= $2
      AND ($3::text[] IS NULL OR t."organization_id" = ANY($3::text[]))
      AND ($4::text IS NULL OR t."model" = $4)
      AND ($5::text IS NULL OR t."api_key" = $5)
), days AS (
    SELECT r.date FROM r GROUP BY r.date ORDER BY r.date DESC LIMIT $6 OFFSET $7
), d AS (
    SELECT days.date FROM days
)
SELECT jsonb_build_object(
    'results', COALESCE((SELECT jsonb_agg(jsonb_build_object(
        'date', d.date,
        'metrics', (SELECT jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) FROM r WHERE r.date = d.date),
        'breakdown', jsonb_build_object(
            'models', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.model, ''), 'unknown-model') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'model_groups', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.model_group, ''), NULLIF(r.model, ''), 'unknown-model-group') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'providers', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.custom_llm_provider, ''), 'unknown') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'endpoints', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.endpoint, ''), 'unknown') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'api_keys', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.api_key, ''), 'unattributed') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'entities', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(r.entity, 'Unassigned') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b)))
        ORDER BY d.date DESC) FROM d), '[]'),
    'metadata', (SELECT jsonb_build_object(
        'total_spend', COALESCE(sum(r.spend), 0),
        'total_prompt_tokens', COALESCE(sum(r.prompt_tokens), 0),
        'total_completion_tokens', COALESCE(sum(r.completion_tokens), 0),
        'total_tokens', COALESCE(sum(r.prompt_tokens + r.completion_tokens), 0),
        'total_api_requests', COALESCE(sum(r.api_requests), 0),
        'total_successful_requests', COALESCE(sum(r.successful_requests), 0),
        'total_failed_requests', COALESCE(sum(r.failed_requests), 0),
        'total_cache_read_input_tokens', COALESCE(sum(r.cache_read_input_tokens), 0),
        'total_cache_creation_input_tokens', COALESCE(sum(r.cache_creation_input_tokens), 0),
        'total_days', (SELECT count(DISTINCT r2.date) FROM r r2))
        FROM r));

-- name: DailyEndUserActivity
WITH r AS (
    SELECT t.*, t."end_user_id" AS entity FROM "TianjiLLM_DailyEndUserSpend" t
    WHERE t."date" >= $1 AND t."date" <= $2
      AND ($3::text[] IS NULL OR t."end_user_id" = ANY($3::text[]))
      AND ($4::text IS NULL OR t."model" = $4)
      AND ($5::text IS NULL OR t."api_key" = $5)
), days AS (
    SELECT r.date FROM r GROUP BY r.date ORDER BY r.date DESC LIMIT $6 OFFSET $7
), d AS (
    SELECT days.date FROM days
)
SELECT jsonb_build_object(
    'results', COALESCE((SELECT jsonb_agg(jsonb_build_object(
        'date', d.date,
        'metrics', (SELECT jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) FROM r WHERE r.date = d.date),
        'breakdown', jsonb_build_object(
            'models', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.model, ''), 'unknown-model') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'model_groups', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.model_group, ''), NULLIF(r.model, ''), 'unknown-model-group') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'providers', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.custom_llm_provider, ''), 'unknown') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'endpoints', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.endpoint, ''), 'unknown') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'api_keys', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.api_key, ''), 'unattributed') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'entities', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(r.entity, 'Unassigned') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b)))
        ORDER BY d.date DESC) FROM d), '[]'),
    'metadata', (SELECT jsonb_build_object(
        'total_spend', COALESCE(sum(r.spend), 0),
        'total_prompt_tokens', COALESCE(sum(r.prompt_tokens), 0),
        'total_completion_tokens', COALESCE(sum(r.completion_tokens), 0),
        'total_tokens', COALESCE(sum(r.prompt_tokens + r.completion_tokens), 0),
        'total_api_requests', COALESCE(sum(r.api_requests), 0),
        'total_successful_requests', COALESCE(sum(r.successful_requests), 0),
        'total_failed_requests', COALESCE(sum(r.failed_requests), 0),
        'total_cache_read_input_tokens', COALESCE(sum(r.cache_read_input_tokens), 0),
        'total_cache_creation_input_tokens', COALESCE(sum(r.cache_creation_input_tokens), 0),
        'total_days', (SELECT count(DISTINCT r2.date) FROM r r2))
        FROM r));

-- name: DailyAgentActivity
WITH r AS (
    SELECT t.*, t."agent_id" AS entity FROM "TianjiLLM_DailyAgentSpend" t
    WHERE t."date" >= $1 AND t."date" <= $2
      AND ($3::text[] IS NULL OR t."agent_id" = ANY($3::text[]))
      AND ($4::text IS NULL OR t."model" = $4)
      AND ($5::text IS NULL OR t."api_key" = $5)
      AND ($8::text[] IS NULL OR t."agent_id" IS NULL OR NOT (t."agent_id" = ANY($8::text[])))
), days AS (
    SELECT r.date FROM r GROUP BY r.date ORDER BY r.date DESC LIMIT $6 OFFSET $7
), d AS (
    SELECT days.date FROM days
)
SELECT jsonb_build_object(
    'results', COALESCE((SELECT jsonb_agg(jsonb_build_object(
        'date', d.date,
        'metrics', (SELECT jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) FROM r WHERE r.date = d.date),
        'breakdown', jsonb_build_object(
            'models', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.model, ''), 'unknown-model') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'model_groups', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.model_group, ''), NULLIF(r.model, ''), 'unknown-model-group') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'providers', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.custom_llm_provider, ''), 'unknown') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'endpoints', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.endpoint, ''), 'unknown') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'api_keys', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(NULLIF(r.api_key, ''), 'unattributed') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b),
            'entities', (SELECT COALESCE(jsonb_object_agg(b.k, jsonb_build_object('metrics', b.m)), '{}')
               FROM (SELECT COALESCE(r.entity, 'Unassigned') AS k, jsonb_build_object('spend', sum(r.spend), 'prompt_tokens', sum(r.prompt_tokens),
        'completion_tokens', sum(r.completion_tokens),
        'cache_read_input_tokens', sum(r.cache_read_input_tokens),
        'cache_creation_input_tokens', sum(r.cache_creation_input_tokens),
        'total_tokens', sum(r.prompt_tokens + r.completion_tokens),
        'api_requests', sum(r.api_requests), 'successful_requests', sum(r.successful_requests),
        'failed_requests', sum(r.failed_requests)) AS m
                     FROM r WHERE r.date = d.date GROUP BY 1) b)))
        ORDER BY d.date DESC) FROM d), '[]'),
    'metadata', (SELECT jsonb_build_object(
        'total_spend', COALESCE(sum(r.spend), 0),
        'total_prompt_tokens', COALESCE(sum(r.prompt_tokens), 0),
        'total_completion_tokens', COALESCE(sum(r.completion_tokens), 0),
        'total_tokens', COALESCE(sum(r.prompt_tokens + r.completion_tokens), 0),
        'total_api_requests', COALESCE(sum(r.api_requests), 0),
        'total_successful_requests', COALESCE(sum(r.successful_requests), 0),
        'total_failed_requests', COALESCE(sum(r.failed_requests), 0),
        'total_cache_read_input_tokens', COALESCE(sum(r.cache_read_input_tokens), 0),
        'total_cache_creation_input_tokens', COALESCE(sum(r.cache_creation_input_tokens), 0),
        'total_days', (SELECT count(DISTINCT r2.date) FROM r r2))
        FROM r));
