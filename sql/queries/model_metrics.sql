-- Model metrics (/model/metrics, /model/metrics/slow_responses, /model/metrics/exceptions),
-- LiteLLM's reports over SpendLogs and ErrorLogs. A deployment is named as LiteLLM names it:
-- its api_base cut before "/openai/" when the base is https, else the model. Cache hits and
-- failed requests are left out of latencies. Parameters: $1 model group (NULL: all), $2 and
-- $3 the window's start and end (Unix seconds, on startTime), then the filters (NULL: none).

-- name: ModelLatencyPerToken
-- $4 hashed key, $5 end user. Average seconds per output token, per deployment and UTC day.
SELECT to_char(t.day, 'YYYY-MM-DD'), t.name, t.v
FROM (
    SELECT DATE_TRUNC('day', s."startTime")::date AS day,
           CASE WHEN COALESCE(s."api_base", '') LIKE '%https://%'
                THEN split_part(s."api_base", '/openai/', 1)
                ELSE s."model" END AS name,
           AVG(EXTRACT(epoch FROM (s."endTime" - s."startTime"))
               / NULLIF(s."completion_tokens", 0))::float8 AS v
    FROM "TianjiLLM_SpendLogs" s
    WHERE s."startTime" >= (to_timestamp($2::float8) AT TIME ZONE 'UTC')
      AND s."startTime" <= (to_timestamp($3::float8) AT TIME ZONE 'UTC')
      AND ($1::text IS NULL OR s."model_group" = $1)
      AND COALESCE(s."cache_hit", '') <> 'True'
      AND COALESCE(s."status", '') <> 'failure'
      AND ($4::text IS NULL OR s."api_key" = $4)
      AND ($5::text IS NULL OR s."end_user" = $5)
    GROUP BY 1, 2
    HAVING SUM(s."completion_tokens") > 0
) t
ORDER BY t.day, t.name;

-- name: ModelSlowResponses
-- $4 hashed key, $5 end user, $6 the threshold in seconds (alerting_threshold). Requests and
-- those that took at least the threshold, per deployment base.
SELECT split_part(COALESCE(s."api_base", ''), '/openai/', 1) AS api_base,
       COUNT(*)::bigint AS total_count,
       COUNT(*) FILTER (WHERE s."endTime" - s."startTime" >= make_interval(secs => $6::float8))::bigint AS slow_count
FROM "TianjiLLM_SpendLogs" s
WHERE s."startTime" >= (to_timestamp($2::float8) AT TIME ZONE 'UTC')
  AND s."startTime" <= (to_timestamp($3::float8) AT TIME ZONE 'UTC')
  AND ($1::text IS NULL OR s."model_group" = $1)
  AND COALESCE(s."cache_hit", '') <> 'True'
  AND ($4::text IS NULL OR s."api_key" = $4)
  AND ($5::text IS NULL OR s."end_user" = $5)
GROUP BY 1
ORDER BY slow_count DESC, total_count DESC, api_base
LIMIT 1000;

-- name: ModelExceptions
-- Failed requests per deployment (model name, then "-" and the api_base when there is one)
-- and exception type, the 200 deployments with most failures first.
WITH per_type AS (
    SELECT CASE WHEN e."api_base" = '' THEN e."litellm_model_name"
                ELSE e."litellm_model_name" || '-' || e."api_base" END AS name,
           e."exception_type" AS kind,
           COUNT(*)::bigint AS n
    FROM "TianjiLLM_ErrorLogs" e
    WHERE e."startTime" >= (to_timestamp($2::float8) AT TIME ZONE 'UTC')
      AND e."startTime" <= (to_timestamp($3::float8) AT TIME ZONE 'UTC')
      AND ($1::text IS NULL OR e."model_group" = $1)
    GROUP BY 1, 2
)
SELECT name, SUM(n)::bigint AS total, jsonb_object_agg(kind, n) AS counts
FROM per_type
GROUP BY name
ORDER BY total DESC, name
LIMIT 200;
