-- One call carries the limiter work of many requests (batched by the gateway while a call is in
-- flight): parallel-slot releases and token reconciliations of finished requests, and the
-- admission checks of new ones. Each admission is all-or-nothing over its own descriptors:
-- it counts on all of them only if none is over its limit. Fixed window per descriptor,
-- started by the first request after the previous window expired; times from the Redis clock
-- (milliseconds).
--
-- ARGV[1] window (ms)   ARGV[2] slot ttl (ms)   then one op after the other:
--   admission: 1, n, slot id, tokens to reserve, requests to count (1, or a batch's lines),
--     then per descriptor: rpm, tpm, max parallel (-1 = no limit), gate, source, window (ms;
--     -1 = ARGV[1]). Gate -1 = always enforced; gate g >= 0 = enforced only while descriptor
--     `source` of the same op (an earlier one, max of requests/rpm and tokens/tpm before this
--     request) is at least g saturated, else only counted.
--   release: 2, n, slot id, token delta, then per descriptor: the window start seen at
--     admission (-1 = no token limit), 1 if it holds a parallel slot else 0.
--   fold (counts made in memory while Redis was failing): 3, n, then per descriptor: age of
--     its window (ms; -1 = no counts), window (ms), requests, tokens, number of slots m, then
--     m pairs of slot id and slot age (ms). The counts go to the open window (or open one
--     that started `age` ago), the slots into the slot set.
-- KEYS: per descriptor of every op, in order: window start, request counter, token counter,
--   parallel slot set (sorted set of slot id -> acquire time).
--
-- Returns one entry per admission and fold, in order: {0, now, start_1, requests_1, tokens_1,
-- in_flight_1, ...} when admitted, or {1, i, kind, current, limit, start, saturation} for its
-- first descriptor over its limit (kind 1 = requests, 2 = tokens, 3 = max_parallel_requests);
-- for a fold, the window start each descriptor's counts went to (0 = none).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local slot_ttl = tonumber(ARGV[2])

local function admit(k, a, n, slot, want, count)
  local seen = {}
  local function arg(i, f) return tonumber(ARGV[a + 6 * (i - 1) + f]) end
  local function saturation(j)
    local s = seen[j]
    local rpm, tpm = arg(j, 0), arg(j, 1)
    local sat = 0
    if rpm > 0 then sat = math.max(sat, s[2] / rpm) end
    if tpm > 0 then sat = math.max(sat, s[3] / tpm) end
    return sat
  end
  for i = 1, n do
    local b = k + 4 * (i - 1)
    local wk, rk, tk, pk = KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 3]
    local rpm, tpm, par, gate, source = arg(i, 0), arg(i, 1), arg(i, 2), arg(i, 3), arg(i, 4)
    local win = arg(i, 5)
    if win < 0 then win = window end
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
      if start and now - start < win then
        requests = tonumber(redis.call('GET', rk) or '0')
        tokens = tonumber(redis.call('GET', tk) or '0')
      else
        start = nil
      end
      if enforce and rpm >= 0 and requests + count > rpm then
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
    local b = k + 4 * (i - 1)
    local wk, rk, tk, pk = KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 3]
    local rpm, tpm, par = arg(i, 0), arg(i, 1), arg(i, 2)
    local win = arg(i, 5)
    if win < 0 then win = window end
    local start, requests, tokens, in_flight = seen[i][1], seen[i][2], seen[i][3], seen[i][4]
    if rpm >= 0 or tpm >= 0 then
      if start then
        requests = redis.call('INCRBY', rk, count)
        tokens = redis.call('INCRBY', tk, want)
      else
        start = now
        redis.call('SET', wk, now, 'PX', win)
        redis.call('SET', rk, count, 'PX', win)
        redis.call('SET', tk, want, 'PX', win)
        requests = count
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
end

local function release(k, a, n, slot, delta)
  for i = 1, n do
    local b = k + 4 * (i - 1)
    local wk, tk, pk = KEYS[b], KEYS[b + 2], KEYS[b + 3]
    local start = tonumber(ARGV[a + 2 * (i - 1)])
    if start >= 0 and delta ~= 0 and tonumber(redis.call('GET', wk)) == start then
      redis.call('INCRBY', tk, delta)
    end
    if ARGV[a + 2 * (i - 1) + 1] == '1' then
      redis.call('ZREM', pk, slot)
    end
  end
end

local function fold(k, a, n)
  local starts = {}
  for i = 1, n do
    local b = k + 4 * (i - 1)
    local wk, rk, tk, pk = KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 3]
    local age, win = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    local requests, tokens, m = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    a = a + 5
    local start = 0
    if age >= 0 and age < win then
      local s = tonumber(redis.call('GET', wk))
      if s and now - s < win then
        start = s
        redis.call('INCRBY', rk, requests)
        redis.call('INCRBY', tk, tokens)
      else
        start = now - age
        local left = win - age
        redis.call('SET', wk, start, 'PX', left)
        redis.call('SET', rk, requests, 'PX', left)
        redis.call('SET', tk, tokens, 'PX', left)
      end
    end
    for _ = 1, m do
      local id, slot_age = ARGV[a], tonumber(ARGV[a + 1])
      a = a + 2
      if slot_age < slot_ttl then
        redis.call('ZADD', pk, now - slot_age, id)
        redis.call('PEXPIRE', pk, slot_ttl)
      end
    end
    starts[i] = start
  end
  return a, starts
end

local results = {}
local a = 3
local k = 1
while a <= #ARGV do
  local op, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  if op == 3 then
    local starts
    a, starts = fold(k, a + 2, n)
    results[#results + 1] = starts
  elseif op == 1 then
    local slot, x = ARGV[a + 2], tonumber(ARGV[a + 3])
    local count = tonumber(ARGV[a + 4])
    a = a + 5
    results[#results + 1] = admit(k, a, n, slot, x, count)
    a = a + 6 * n
  else
    local slot, x = ARGV[a + 2], tonumber(ARGV[a + 3])
    a = a + 4
    release(k, a, n, slot, x)
    a = a + 2 * n
  end
  k = k + 4 * n
end
return results
