-- Check every descriptor of one request and, only if none is over, count the request on all of
-- them (all-or-nothing). Fixed window per descriptor, started by the first request after the
-- previous window expired; times from the Redis server clock (milliseconds).
--
-- KEYS: per descriptor i, four keys: window start, request counter, token counter, parallel
--       slot set (a sorted set of slot id -> acquire time).
-- ARGV[1] window (ms)   ARGV[2] slot id   ARGV[3] tokens to reserve   ARGV[4] slot ttl (ms)
-- ARGV[4 + 5i - 4 .. 4 + 5i]: rpm, tpm, max parallel of descriptor i (-1 = no limit), then its
-- gate and saturation source: gate -1 = always enforced; gate g >= 0 = enforced only while the
-- saturation of descriptor `source` (max of requests/rpm and tokens/tpm, before this request)
-- is at least g, otherwise only counted (the dynamic limiter's priority pools).
--
-- Returns {0, now, start_1, requests_1, tokens_1, in_flight_1, ...} when admitted, or
-- {1, i, kind, current, limit, start, saturation} for the first descriptor over its limit
-- (kind 1 = requests, 2 = tokens, 3 = max_parallel_requests; saturation as a string).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local slot = ARGV[2]
local want = tonumber(ARGV[3])
local slot_ttl = tonumber(ARGV[4])
local n = #KEYS / 4
local seen = {}
local function saturation(j)
  local s = seen[j]
  local rpm = tonumber(ARGV[4 + 5 * j - 4])
  local tpm = tonumber(ARGV[4 + 5 * j - 3])
  local sat = 0
  if rpm > 0 then sat = math.max(sat, s[2] / rpm) end
  if tpm > 0 then sat = math.max(sat, s[3] / tpm) end
  return sat
end
for i = 1, n do
  local wk, rk, tk, pk = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local rpm = tonumber(ARGV[4 + 5 * i - 4])
  local tpm = tonumber(ARGV[4 + 5 * i - 3])
  local par = tonumber(ARGV[4 + 5 * i - 2])
  local gate = tonumber(ARGV[4 + 5 * i - 1])
  local source = tonumber(ARGV[4 + 5 * i])
  local sat = 0
  local enforce = true
  if gate >= 0 and source >= 1 and source < i then
    sat = saturation(source)
    enforce = sat >= gate
  end
  local start = nil
  local requests, tokens, in_flight = 0, 0, 0
  if rpm >= 0 or tpm >= 0 then
    start = tonumber(redis.call('GET', wk))
    if start and now - start < window then
      requests = tonumber(redis.call('GET', rk) or '0')
      tokens = tonumber(redis.call('GET', tk) or '0')
    else
      start = nil
    end
    if enforce and rpm >= 0 and requests + 1 > rpm then
      return {1, i, 1, requests, rpm, start or now, tostring(sat)}
    end
    if enforce and tpm >= 0 then
      local over
      if want > 0 then over = tokens + want > tpm else over = tokens >= tpm end
      if over then return {1, i, 2, tokens, tpm, start or now, tostring(sat)} end
    end
  end
  if par >= 0 then
    redis.call('ZREMRANGEBYSCORE', pk, '-inf', now - slot_ttl)
    in_flight = redis.call('ZCARD', pk)
    if enforce and in_flight + 1 > par then
      return {1, i, 3, in_flight, par, now, tostring(sat)}
    end
  end
  seen[i] = {start, requests, tokens, in_flight}
end
local out = {0, now}
for i = 1, n do
  local wk, rk, tk, pk = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local rpm = tonumber(ARGV[4 + 5 * i - 4])
  local tpm = tonumber(ARGV[4 + 5 * i - 3])
  local par = tonumber(ARGV[4 + 5 * i - 2])
  local s = seen[i]
  local start, requests, tokens, in_flight = s[1], s[2], s[3], s[4]
  if rpm >= 0 or tpm >= 0 then
    if start then
      requests = redis.call('INCR', rk)
      tokens = redis.call('INCRBY', tk, want)
    else
      start = now
      redis.call('SET', wk, now, 'PX', window)
      redis.call('SET', rk, 1, 'PX', window)
      redis.call('SET', tk, want, 'PX', window)
      requests = 1
      tokens = want
    end
  end
  if par >= 0 then
    redis.call('ZADD', pk, now, slot)
    redis.call('PEXPIRE', pk, slot_ttl)
    in_flight = in_flight + 1
  end
  out[#out + 1] = start or 0
  out[#out + 1] = requests
  out[#out + 1] = tokens
  out[#out + 1] = in_flight
end
return out
