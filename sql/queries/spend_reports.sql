-- Spend and activity reports. Dates are 'YYYY-MM-DD' (UTC days); a range covers start_date from
-- 00:00 through the whole of end_date. A NULL filter parameter means "no filter"; non-admin
-- callers get their own user id forced into the `user` filter by the handler.

-- name: SpendLogsRows
-- $1 api_key hash, $2 user, $3 request_id, $4 start_date, $5 end_date. Newest first, capped.
SELECT to_jsonb(s) FROM "TianjiLLM_SpendLogs" s
WHERE ($1::text IS NULL OR s."api_key" = $1)
  AND ($2::text IS NULL OR s."user" = $2)
  AND ($3::text IS NULL OR s."request_id" = $3 OR s."litellm_call_id" = $3)
  AND ($4::text IS NULL OR s."startTime" >= $4::text::date)
  AND ($5::text IS NULL OR s."startTime" < $5::text::date + 1)
ORDER BY s."startTime" DESC
LIMIT 10000;

-- name: SpendLogsSummary
-- Same filters; one object per day with rows: the day's spend, per key hash (top-level keys),
-- per user and per model.
WITH f AS (
    SELECT to_char(s."startTime", 'YYYY-MM-DD') AS day, s."api_key", s."user", s."model", s."spend"
    FROM "TianjiLLM_SpendLogs" s
    WHERE ($1::text IS NULL OR s."api_key" = $1)
      AND ($2::text IS NULL OR s."user" = $2)
      AND ($3::text IS NULL OR s."request_id" = $3 OR s."litellm_call_id" = $3)
      AND ($4::text IS NULL OR s."startTime" >= $4::text::date)
      AND ($5::text IS NULL OR s."startTime" < $5::text::date + 1)
)
SELECT COALESCE((SELECT jsonb_object_agg(k.api_key, k.spend)
                 FROM (SELECT f2."api_key", sum(f2."spend") AS spend FROM f f2
                       WHERE f2.day = f.day AND f2."api_key" <> '' GROUP BY f2."api_key") k), '{}')
    || jsonb_build_object(
        'startTime', f.day,
        'spend', sum(f."spend"),
        'users', (SELECT jsonb_object_agg(COALESCE(u."user", 'null'), u.spend)
                  FROM (SELECT f3."user", sum(f3."spend") AS spend FROM f f3 WHERE f3.day = f.day
                        GROUP BY f3."user") u),
        'models', (SELECT jsonb_object_agg(m."model", m.spend)
                   FROM (SELECT f4."model", sum(f4."spend") AS spend FROM f f4 WHERE f4.day = f.day
                         GROUP BY f4."model") m))
FROM f GROUP BY f.day ORDER BY f.day;

-- name: SpendKeys
-- $1 user (NULL = all keys). Keys by spend, highest first (no key material but the hash).
SELECT to_jsonb(v) - 'key_name' || jsonb_build_object('key_name', v."key_name")
FROM "TianjiLLM_VerificationToken" v
WHERE $1::text IS NULL OR v."user_id" = $1
ORDER BY v."spend" DESC;

-- name: SpendUsers
-- $1 user (NULL = all users), with their keys' aliases.
SELECT to_jsonb(u) - 'password' || jsonb_build_object('key_aliases',
        (SELECT COALESCE(jsonb_agg(v."key_alias"), '[]') FROM "TianjiLLM_VerificationToken" v
         WHERE v."user_id" = u."user_id"))
FROM "TianjiLLM_UserTable" u
WHERE $1::text IS NULL OR u."user_id" = $1
ORDER BY u."spend" DESC;

-- name: SpendTeams
SELECT jsonb_build_object('team_id', t."team_id", 'team_alias', t."team_alias", 'spend', t."spend",
                          'max_budget', t."max_budget", 'organization_id', t."organization_id")
FROM "TianjiLLM_TeamTable" t ORDER BY t."spend" DESC;

-- name: SpendEndUsers
SELECT jsonb_build_object('user_id', e."user_id", 'alias', e."alias", 'spend', e."spend", 'blocked', e."blocked")
FROM "TianjiLLM_EndUserTable" e ORDER BY e."spend" DESC;

-- name: SpendModels
-- $1 user, $2 start_date, $3 end_date.
SELECT jsonb_build_object('model', s."model", 'model_group', max(s."model_group"),
                          'total_spend', sum(s."spend"), 'total_tokens', sum(s."total_tokens"),
                          'log_count', count(*))
FROM "TianjiLLM_SpendLogs" s
WHERE ($1::text IS NULL OR s."user" = $1)
  AND ($2::text IS NULL OR s."startTime" >= $2::text::date)
  AND ($3::text IS NULL OR s."startTime" < $3::text::date + 1)
GROUP BY s."model" ORDER BY sum(s."spend") DESC;

-- name: SpendTags
-- $1 user, $2 start_date, $3 end_date. A request counts once per tag; untagged ones not at all.
SELECT jsonb_build_object('individual_request_tag', t.tag, 'log_count', count(*),
                          'total_spend', sum(s."spend"))
FROM "TianjiLLM_SpendLogs" s
CROSS JOIN LATERAL jsonb_array_elements_text(
    CASE WHEN jsonb_typeof(s."request_tags") = 'array' THEN s."request_tags" ELSE '[]' END) AS t(tag)
WHERE ($1::text IS NULL OR s."user" = $1)
  AND ($2::text IS NULL OR s."startTime" >= $2::text::date)
  AND ($3::text IS NULL OR s."startTime" < $3::text::date + 1)
GROUP BY t.tag ORDER BY sum(s."spend") DESC;

-- name: GlobalActivity
-- $1 start_date, $2 end_date, $3 user. Requests and tokens per day, days in date order.
WITH d AS (
    SELECT date_trunc('day', s."startTime") AS day, count(*) AS api_requests,
           COALESCE(sum(s."total_tokens"), 0) AS total_tokens
    FROM "TianjiLLM_SpendLogs" s
    WHERE s."startTime" >= $1::text::date AND s."startTime" < $2::text::date + 1
      AND ($3::text IS NULL OR s."user" = $3)
    GROUP BY 1
)
SELECT jsonb_build_object(
    'daily_data', COALESCE((SELECT jsonb_agg(jsonb_build_object('date', to_char(d.day, 'Mon DD'),
                    'api_requests', d.api_requests, 'total_tokens', d.total_tokens) ORDER BY d.day)
                  FROM d), '[]'),
    'sum_api_requests', (SELECT COALESCE(sum(d.api_requests), 0) FROM d),
    'sum_total_tokens', (SELECT COALESCE(sum(d.total_tokens), 0) FROM d));

-- name: GlobalActivityModel
-- Same parameters; the 10 model groups with the most requests, each with its days.
WITH d AS (
    SELECT s."model_group", date_trunc('day', s."startTime") AS day, count(*) AS api_requests,
           COALESCE(sum(s."total_tokens"), 0) AS total_tokens
    FROM "TianjiLLM_SpendLogs" s
    WHERE s."startTime" >= $1::text::date AND s."startTime" < $2::text::date + 1
      AND ($3::text IS NULL OR s."user" = $3)
    GROUP BY 1, 2
), m AS (
    SELECT d."model_group", sum(d.api_requests) AS req, sum(d.total_tokens) AS tok
    FROM d GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10
)
SELECT COALESCE(jsonb_agg(jsonb_build_object(
    'model', m."model_group",
    'daily_data', (SELECT jsonb_agg(jsonb_build_object('model_group', d."model_group",
                        'date', to_char(d.day, 'Mon DD'), 'api_requests', d.api_requests,
                        'total_tokens', d.total_tokens) ORDER BY d.day)
                   FROM d WHERE d."model_group" = m."model_group"),
    'sum_api_requests', m.req, 'sum_total_tokens', m.tok) ORDER BY m.req DESC, m."model_group"), '[]')
FROM m;

-- name: GlobalActivityCacheHits
-- $1 start_date, $2 end_date, $3 user. Per call type: requests answered upstream, cache hits,
-- failures and completion tokens (from cache or generated).
WITH f AS (
    SELECT COALESCE(NULLIF(s."call_type", ''), 'Unknown') AS call_type,
           s."cache_hit" = 'True' AS hit, s."status" = 'failure' AS failed, s."completion_tokens"
    FROM "TianjiLLM_SpendLogs" s
    WHERE s."startTime" >= $1::text::date AND s."startTime" < $2::text::date + 1
      AND ($3::text IS NULL OR s."user" = $3)
), g AS (
    SELECT f.call_type, count(*) AS total_rows,
           count(*) FILTER (WHERE f.hit) AS cache_hits,
           count(*) FILTER (WHERE f.failed AND NOT f.hit) AS failed_requests,
           COALESCE(sum(f."completion_tokens") FILTER (WHERE f.hit), 0) AS cached_completion_tokens,
           COALESCE(sum(f."completion_tokens") FILTER (WHERE NOT f.hit), 0) AS generated_completion_tokens
    FROM f GROUP BY 1
)
SELECT jsonb_build_object(
    'groups', COALESCE((SELECT jsonb_agg(jsonb_build_object('call_type', g.call_type,
                  'api_requests', g.total_rows - g.cache_hits - g.failed_requests,
                  'cache_hits', g.cache_hits, 'failed_requests', g.failed_requests,
                  'cached_completion_tokens', g.cached_completion_tokens,
                  'generated_completion_tokens', g.generated_completion_tokens)
                  ORDER BY g.total_rows DESC, g.call_type) FROM g), '[]'),
    'totals', (SELECT jsonb_build_object(
                  'api_requests', COALESCE(sum(g.total_rows - g.cache_hits - g.failed_requests), 0),
                  'cache_hits', COALESCE(sum(g.cache_hits), 0),
                  'failed_requests', COALESCE(sum(g.failed_requests), 0),
                  'cached_completion_tokens', COALESCE(sum(g.cached_completion_tokens), 0),
                  'cache_hit_ratio', CASE WHEN COALESCE(sum(g.total_rows), 0) = 0 THEN 0.0
                      ELSE round(sum(g.cache_hits)::numeric * 100 / sum(g.total_rows), 2)::float8 END)
               FROM g));

-- name: GlobalSpend
-- Spend of the last 30 days.
SELECT sum(s."spend") FROM "TianjiLLM_SpendLogs" s
WHERE s."startTime" >= (now() AT TIME ZONE 'UTC')::date - 30;

-- name: GlobalSpendKeys
-- $1 limit, $2 user. Keys by spend over the last 30 days.
SELECT jsonb_build_object('api_key', s."api_key", 'key_alias', max(v."key_alias"),
                          'key_name', max(v."key_name"), 'total_spend', sum(s."spend"))
FROM "TianjiLLM_SpendLogs" s LEFT JOIN "TianjiLLM_VerificationToken" v ON v."token" = s."api_key"
WHERE s."startTime" >= (now() AT TIME ZONE 'UTC')::date - 30
  AND ($2::text IS NULL OR s."user" = $2)
GROUP BY s."api_key" ORDER BY sum(s."spend") DESC LIMIT $1;

-- name: GlobalSpendModels
-- $1 limit, $2 user. Models by spend over the last 30 days.
SELECT jsonb_build_object('model', s."model", 'total_spend', sum(s."spend"))
FROM "TianjiLLM_SpendLogs" s
WHERE s."startTime" >= (now() AT TIME ZONE 'UTC')::date - 30 AND s."model" <> ''
  AND ($2::text IS NULL OR s."user" = $2)
GROUP BY s."model" ORDER BY sum(s."spend") DESC LIMIT $1;

-- name: GlobalSpendTeams
-- Spend per team alias and day over the last 30 days, as LiteLLM reports it: teams are grouped
-- by alias ('Unassigned' without one), each day's spend rounded to cents, and the top 10 totals
-- name the alias both as `team_id` (LiteLLM's name for it) and as `team_alias`.
WITH d AS (
    SELECT COALESCE(t."team_alias", 'Unassigned') AS team, s."startTime"::date AS day,
           round(sum(s."spend")::numeric, 2) AS spend
    FROM "TianjiLLM_SpendLogs" s LEFT JOIN "TianjiLLM_TeamTable" t ON t."team_id" = s."team_id"
    WHERE s."startTime" >= (now() AT TIME ZONE 'UTC')::date - 30
    GROUP BY 1, 2
)
SELECT jsonb_build_object(
    'daily_spend', COALESCE((SELECT jsonb_agg(x.o ORDER BY x.day) FROM (
        SELECT d.day, jsonb_build_object('date', to_char(d.day, 'YYYY-MM-DD'))
               || jsonb_object_agg(d.team, d.spend) AS o
        FROM d GROUP BY d.day) x), '[]'),
    'teams', COALESCE((SELECT jsonb_agg(DISTINCT d.team) FROM d), '[]'),
    'total_spend_per_team', COALESCE((SELECT jsonb_agg(jsonb_build_object('team_id', y.team,
        'team_alias', y.team, 'total_spend', y.spend) ORDER BY y.spend DESC, y.team) FROM (
        SELECT d.team, sum(d.spend) AS spend FROM d GROUP BY d.team ORDER BY 2 DESC, 1 LIMIT 10) y), '[]'));

-- name: GlobalSpendTags
-- $1 start_date, $2 end_date, $3 tags (NULL = all), $4 user.
SELECT jsonb_build_object('spend_per_tag', COALESCE(jsonb_agg(jsonb_build_object(
    'name', x.tag, 'spend', round(x.spend::numeric, 4)::float8, 'log_count', x.n)
    ORDER BY x.spend DESC, x.tag), '[]'))
FROM (
    SELECT t.tag, sum(s."spend") AS spend, count(*) AS n
    FROM "TianjiLLM_SpendLogs" s
    CROSS JOIN LATERAL jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(s."request_tags") = 'array' THEN s."request_tags" ELSE '[]' END) AS t(tag)
    WHERE s."startTime" >= $1::text::date AND s."startTime" < $2::text::date + 1
      AND ($3::text[] IS NULL OR t.tag = ANY($3::text[]))
      AND ($4::text IS NULL OR s."user" = $4)
    GROUP BY t.tag
) x;

-- name: GlobalSpendProvider
-- $1 start_date, $2 end_date, $3 user. Spend per provider.
SELECT jsonb_build_object('provider', s."custom_llm_provider", 'spend', sum(s."spend"))
FROM "TianjiLLM_SpendLogs" s
WHERE s."startTime" >= $1::text::date AND s."startTime" < $2::text::date + 1
  AND COALESCE(s."custom_llm_provider", '') <> ''
  AND ($3::text IS NULL OR s."user" = $3)
GROUP BY s."custom_llm_provider" ORDER BY sum(s."spend") DESC;

-- name: GlobalSpendEndUsers
-- $1 api_key hash (NULL = all), $2 from, $3 to (timestamps as text; NULL = now), $4 user. Top
-- 100 end users.
SELECT jsonb_build_object('end_user', s."end_user", 'total_count', count(*), 'total_spend', sum(s."spend"))
FROM "TianjiLLM_SpendLogs" s
WHERE s."startTime" >= $2::text::timestamp AND ($3::text IS NULL OR s."startTime" < $3::text::timestamp)
  AND ($1::text IS NULL OR s."api_key" = $1)
  AND ($4::text IS NULL OR s."user" = $4)
GROUP BY s."end_user" ORDER BY sum(s."spend") DESC LIMIT 100;

-- name: GlobalSpendReportTeams
-- $1 start_date, $2 end_date, $3 team_id. Per day, per team: spend and per model/key detail.
WITH r AS (
    SELECT date_trunc('day', s."startTime") AS day, s."team_id", s."model", s."api_key",
           sum(s."spend") AS spend, sum(s."total_tokens") AS tokens
    FROM "TianjiLLM_SpendLogs" s
    WHERE s."startTime" >= $1::text::date AND s."startTime" < $2::text::date + 1
      AND ($3::text IS NULL OR s."team_id" = $3)
    GROUP BY 1, 2, 3, 4
), t AS (
    SELECT r.day, r."team_id", sum(r.spend) AS spend,
           jsonb_agg(jsonb_build_object('model', r."model", 'api_key', r."api_key",
                     'spend', r.spend, 'total_tokens', r.tokens) ORDER BY r.spend DESC) AS meta
    FROM r GROUP BY 1, 2
)
SELECT jsonb_build_object('group_by_day', to_char(t.day, 'YYYY-MM-DD"T"HH24:MI:SS'),
    'teams', jsonb_agg(jsonb_build_object('team_name', COALESCE(tt."team_alias", t."team_id", 'Unassigned Team'),
        'team_id', t."team_id", 'total_spend', t.spend, 'metadata', t.meta) ORDER BY t.spend DESC))
FROM t LEFT JOIN "TianjiLLM_TeamTable" tt ON tt."team_id" = t."team_id"
GROUP BY t.day ORDER BY t.day;

-- name: GlobalSpendReportCustomers
-- $1 start_date, $2 end_date, $3 customer (end user). Per day, per end user.
WITH r AS (
    SELECT date_trunc('day', s."startTime") AS day, s."end_user", s."model", s."api_key",
           sum(s."spend") AS spend, sum(s."total_tokens") AS tokens
    FROM "TianjiLLM_SpendLogs" s
    WHERE s."startTime" >= $1::text::date AND s."startTime" < $2::text::date + 1
      AND ($3::text IS NULL OR s."end_user" = $3)
    GROUP BY 1, 2, 3, 4
), c AS (
    SELECT r.day, r."end_user", sum(r.spend) AS spend,
           jsonb_agg(jsonb_build_object('model', r."model", 'api_key', r."api_key",
                     'spend', r.spend, 'total_tokens', r.tokens) ORDER BY r.spend DESC) AS meta
    FROM r GROUP BY 1, 2
)
SELECT jsonb_build_object('group_by_day', to_char(c.day, 'YYYY-MM-DD"T"HH24:MI:SS'),
    'customers', jsonb_agg(jsonb_build_object('customer', c."end_user", 'total_spend', c.spend,
        'metadata', c.meta) ORDER BY c.spend DESC))
FROM c GROUP BY c.day ORDER BY c.day;

-- name: GlobalSpendReportTeamCustomers
-- $1 start_date, $2 end_date, $3 team_id, $4 customer (end user). Per day: the team's spend for
-- that end user, with per model/key detail.
WITH r AS (
    SELECT date_trunc('day', s."startTime") AS day, s."model", s."api_key",
           sum(s."spend") AS spend, sum(s."total_tokens") AS tokens
    FROM "TianjiLLM_SpendLogs" s
    WHERE s."startTime" >= $1::text::date AND s."startTime" < $2::text::date + 1
      AND s."team_id" = $3 AND s."end_user" = $4
    GROUP BY 1, 2, 3
)
SELECT jsonb_build_object('group_by_day', to_char(r.day, 'YYYY-MM-DD"T"HH24:MI:SS'),
    'teams_customers', jsonb_build_array(jsonb_build_object(
        'team_name', COALESCE(max(tt."team_alias"), 'Unassigned Team'), 'team_id', $3::text,
        'customer', $4::text, 'total_spend', sum(r.spend),
        'metadata', jsonb_agg(jsonb_build_object('model', r."model", 'api_key', r."api_key",
                    'spend', r.spend, 'total_tokens', r.tokens) ORDER BY r.spend DESC))))
FROM r LEFT JOIN "TianjiLLM_TeamTable" tt ON tt."team_id" = $3
GROUP BY r.day ORDER BY r.day;

-- name: GlobalSpendReportKeys
-- $1 start_date, $2 end_date, $3 api_key hash, $4 user. Per key, with per model detail.
WITH r AS (
    SELECT s."api_key", s."model", sum(s."spend") AS spend, sum(s."prompt_tokens") AS inp,
           sum(s."completion_tokens") AS outp
    FROM "TianjiLLM_SpendLogs" s
    WHERE s."startTime" >= $1::text::date AND s."startTime" < $2::text::date + 1
      AND ($3::text IS NULL OR s."api_key" = $3)
      AND ($4::text IS NULL OR s."user" = $4)
    GROUP BY 1, 2
)
SELECT jsonb_build_object('api_key', r."api_key", 'total_cost', sum(r.spend),
    'total_input_tokens', sum(r.inp), 'total_output_tokens', sum(r.outp),
    'model_details', jsonb_agg(jsonb_build_object('model', r."model", 'total_cost', r.spend,
        'total_input_tokens', r.inp, 'total_output_tokens', r.outp) ORDER BY r.spend DESC))
FROM r GROUP BY r."api_key" ORDER BY sum(r.spend) DESC;

-- name: ResetAllKeySpend
-- Every key, also those whose stored spend is still 0: live spend may not be stored yet.
UPDATE "TianjiLLM_VerificationToken" SET "spend" = 0 RETURNING "token";

-- name: ResetAllTeamSpend
UPDATE "TianjiLLM_TeamTable" SET "spend" = 0 RETURNING "team_id";

-- name: ErrorLogsRows
-- $1 request_id, $2 start_date, $3 end_date. Newest first, capped.
SELECT to_jsonb(e) FROM "TianjiLLM_ErrorLogs" e
WHERE ($1::text IS NULL OR e."request_id" = $1)
  AND ($2::text IS NULL OR e."startTime" >= $2::text::date)
  AND ($3::text IS NULL OR e."startTime" < $3::text::date + 1)
ORDER BY e."startTime" DESC
LIMIT 10000;

-- name: DailyAlertReport
-- The daily report alert: the last 24 h's totals, the top 5 keys (by alias or masked name, never
-- the hash) and model groups by spend, the 5 slowest deployments and those with most failures.
WITH recent AS (
    SELECT * FROM "TianjiLLM_SpendLogs" s WHERE s."startTime" > now() - interval '24 hours'
)
SELECT jsonb_build_object(
    'total_spend', (SELECT COALESCE(SUM("spend"), 0) FROM recent),
    'requests', (SELECT COUNT(*) FROM recent),
    'failures', (SELECT COUNT(*) FROM recent WHERE "status" = 'failure'),
    'top_keys', COALESCE((SELECT jsonb_agg(k) FROM (
        SELECT COALESCE(t."key_alias", t."key_name", 'unknown key') AS "key", SUM(r."spend") AS "spend"
        FROM recent r LEFT JOIN "TianjiLLM_VerificationToken" t ON t."token" = r."api_key"
        WHERE r."api_key" <> ''
        GROUP BY 1 ORDER BY 2 DESC LIMIT 5) k), '[]'::jsonb),
    'top_models', COALESCE((SELECT jsonb_agg(m) FROM (
        SELECT COALESCE(NULLIF(r."model_group", ''), r."model") AS "model", SUM(r."spend") AS "spend",
               COUNT(*) AS "requests"
        FROM recent r GROUP BY 1 ORDER BY 2 DESC, 3 DESC LIMIT 5) m), '[]'::jsonb),
    'slowest', COALESCE((SELECT jsonb_agg(d) FROM (
        SELECT COALESCE(NULLIF(r."model_group", ''), r."model") AS "model", r."api_base",
               AVG(r."request_duration_ms")::float8 AS "avg_ms"
        FROM recent r WHERE r."request_duration_ms" IS NOT NULL
        GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5) d), '[]'::jsonb),
    'most_failures', COALESCE((SELECT jsonb_agg(f) FROM (
        SELECT COALESCE(NULLIF(r."model_group", ''), r."model") AS "model", r."api_base",
               COUNT(*) AS "failures"
        FROM recent r WHERE r."status" = 'failure'
        GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5) f), '[]'::jsonb)
);

-- name: SpendReportAlert
-- The weekly / monthly spend report alert: the last $1 days' spend per team (alias, else id) and
-- per request tag, top 10 each.
WITH recent AS (
    SELECT * FROM "TianjiLLM_SpendLogs" s WHERE s."startTime" > now() - make_interval(days => $1::int)
)
SELECT jsonb_build_object(
    'total_spend', (SELECT COALESCE(SUM("spend"), 0) FROM recent),
    'teams', COALESCE((SELECT jsonb_agg(t) FROM (
        SELECT COALESCE(tt."team_alias", r."team_id") AS "name", SUM(r."spend") AS "spend"
        FROM recent r LEFT JOIN "TianjiLLM_TeamTable" tt ON tt."team_id" = r."team_id"
        WHERE COALESCE(r."team_id", '') <> ''
        GROUP BY 1 ORDER BY 2 DESC LIMIT 10) t), '[]'::jsonb),
    'tags', COALESCE((SELECT jsonb_agg(g) FROM (
        SELECT tag AS "name", SUM(r."spend") AS "spend"
        FROM recent r, jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(r."request_tags") = 'array' THEN r."request_tags" ELSE '[]'::jsonb END) tag
        GROUP BY 1 ORDER BY 2 DESC LIMIT 10) g), '[]'::jsonb)
);
