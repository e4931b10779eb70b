-- One call carries the limiter work of many requests (batched by the gateway while a call is in
-- flight): admissions of new requests, releases of finished ones (parallel slots freed, token
-- reservations reconciled), counts made in memory while Redis was failing (folds) and lease
-- renewals. Each admission is all-or-nothing over its own descriptors: it counts on all of them
-- only if none is over its limit. Fixed window per descriptor, started by the first request
-- after the previous window expired; times from the Redis clock (milliseconds).
--
-- One hash per descriptor (KEYS, each distinct descriptor of the call once), loaded once
-- (HGETALL) and written back once (one HSET of the changed fields; PEXPIRE only when a window
-- opened or a lease was set; HDEL only of stale fields), however many operations of the call
-- touch it. Fields:
--   w  window start, x  window end, r  requests in it, t  tokens in it;
--   p:<instance>  parallel slots the instance holds, e:<instance>  when its lease ends.
-- Slots count while their instance's lease runs: a live instance renews its leases (op 4),
-- so the slots of an instance that died free themselves when its leases end.
--
-- ARGV[1] lease (ms)   ARGV[2] this instance's id   ARGV[3] number of descriptors d, then d
--   descriptors: key index, rpm, tpm, max parallel (-1 = no limit), window (ms), gate (-1 =
--   always enforced, else enforced only while the op's source descriptor, an earlier one of
--   the same op, is at least that saturated: max of requests/rpm and tokens/tpm before this
--   request; counted either way);
-- then one op after the other:
--   admission: 1, n, tokens to reserve, requests to count (1, or a batch's lines), then n
--     descriptor indexes; with gates: 5, n, tokens, requests, then n pairs of descriptor
--     index and source (1-based position in the op, 0 = none).
--   release (of finished requests, summed by the gateway per descriptor and window): 2, n,
--     then n times: key index, a window start (-1 = none), token delta for that window (applied
--     only if it is still the descriptor's window), slots of this instance freed. Op 6 is the
--     same for hashes no other operation of the call reads: it reads (HMGET) and writes only
--     the fields it changes.
--   fold: 3, n, then per descriptor: key index, age of its window (ms; -1 = no counts),
--     window (ms), requests, tokens, slots. The counts go to the open window (or open one
--     that started `age` ago), the slots to this instance's.
--   renewal: 4, n, then per descriptor: key index, slots this instance holds there (set, not
--     added: it also repairs a count Redis lost or got wrong), and a new lease.
-- The gateway sends the renewals first (the counts as they were before the call), then the
-- releases (all of them happened before the call), then the rest in the order it came.
--
-- Returns one entry per admission and fold, in order: {0, now, start_1, requests_1, tokens_1,
-- in_flight_1, ...} when admitted, or {1, i, kind, current, limit, start, saturation} for its
-- first descriptor over its limit (kind 1 = requests, 2 = tokens, 3 = max_parallel_requests);
-- for a fold, the window start each descriptor's counts went to (0 = none).
local lease = ARGV[1] + 0
local pme, eme = 'p:' .. ARGV[2], 'e:' .. ARGV[2]
-- the Redis clock (ms), read with the first hash loaded (releases alone do not need it)
local now

-- the hashes as loaded and changed, by key index
local st = {}

-- the other instances' slots on hash `s` (loaded from `h`): those whose lease runs are
-- counted, the others are stale
local function others(s, h)
  local stale
  for i = 1, #h, 2 do
    local f = h[i]
    if f ~= pme and string.sub(f, 1, 2) == 'p:' then
      local e = 'e' .. string.sub(f, 2)
      local ends = s[e] or 0
      if ends > now then
        s.others = s.others + s[f]
        if ends > s.last then s.last = ends end
      else
        stale = stale or {}
        stale[#stale + 1] = f
        stale[#stale + 1] = e
      end
    end
  end
  s.stale = stale or false
end

local function load(k)
  local s = st[k]
  if s then return s end
  if not now then
    local t = redis.call('TIME')
    now = t[1] * 1000 + math.floor(t[2] / 1000)
  end
  local h = redis.call('HGETALL', KEYS[k])
  -- mine: this instance's slots (counted whatever its lease says: it is alive); others:
  -- live slots of other instances; last: when their last lease ends
  s = {mine = 0, lease = 0, others = 0, last = 0,
       opened = false, counts = false, slots = false, renew = false, stale = false}
  for i = 1, #h, 2 do
    s[h[i]] = h[i + 1] + 0
  end
  local known = 0
  if s.w then known = 4 else s.w, s.x, s.r, s.t = 0, 0, 0, 0 end
  if s[pme] then s.mine, known = s[pme], known + 1 end
  if s[eme] then s.lease, known = s[eme], known + 1 end
  if #h > 2 * known then others(s, h) end
  st[k] = s
  return s
end

-- the distinct descriptors: {key index, rpm, tpm, parallel, window, gate}
local desc = {}
local a = 4
for j = 1, ARGV[3] + 0 do
  desc[j] = {ARGV[a] + 0, ARGV[a + 1] + 0, ARGV[a + 2] + 0,
             ARGV[a + 3] + 0, ARGV[a + 4] + 0, ARGV[a + 5] + 0}
  a = a + 6
end

-- the descriptors of the admission at hand (reused), their gating sources, and what the gated
-- ones' sources had counted before it
local refs, sources, seen_r, seen_t = {}, {}, {}, {}

local function admit(n, gated, want, count)
  for i = 1, n do
    local d = desc[refs[i]]
    local s = load(d[1])
    local rpm, tpm, par, win, gate = d[2], d[3], d[4], d[5], d[6]
    local sat = 0
    local enforce = true
    if gated and gate >= 0 and sources[i] >= 1 and sources[i] < i then
      local j = sources[i]
      local src = desc[refs[j]]
      if src[2] > 0 then sat = math.max(sat, seen_r[j] / src[2]) end
      if src[3] > 0 then sat = math.max(sat, seen_t[j] / src[3]) end
      enforce = sat >= gate
    end
    local requests, tokens = 0, 0
    if rpm >= 0 or tpm >= 0 then
      local start = now
      if s.w > 0 and now - s.w < win then
        requests, tokens, start = s.r, s.t, s.w
      end
      if enforce and rpm >= 0 and requests + count > rpm then
        return {1, i, 1, requests, rpm, start, tostring(sat)}
      end
      if enforce and tpm >= 0 then
        local over
        if want > 0 then over = tokens + want > tpm else over = tokens >= tpm end
        if over then return {1, i, 2, tokens, tpm, start, tostring(sat)} end
      end
    end
    if par >= 0 then
      local in_flight = s.mine + s.others
      if enforce and in_flight + 1 > par then
        return {1, i, 3, in_flight, par, now, tostring(sat)}
      end
    end
    if gated then
      seen_r[i], seen_t[i] = requests, tokens
    end
  end
  local out = {0, now}
  local o = 2
  for i = 1, n do
    local d = desc[refs[i]]
    local s = st[d[1]]
    local start, requests, tokens, in_flight = 0, 0, 0, 0
    if d[2] >= 0 or d[3] >= 0 then
      if s.w > 0 and now - s.w < d[5] then
        s.r = s.r + count
        s.t = s.t + want
        s.counts = true
      else
        s.w, s.x, s.r, s.t = now, now + d[5], count, want
        s.opened = true
      end
      start, requests, tokens = s.w, s.r, s.t
    end
    if d[4] >= 0 then
      s.mine = s.mine + 1
      s.slots = true
      in_flight = s.mine + s.others
    end
    out[o + 1], out[o + 2], out[o + 3], out[o + 4] = start, requests, tokens, in_flight
    o = o + 4
  end
  return out
end

local results = {}
local nargs = #ARGV
while a <= nargs do
  local op, n = ARGV[a] + 0, ARGV[a + 1] + 0
  if op == 1 or op == 5 then
    local want, count = ARGV[a + 2] + 0, ARGV[a + 3] + 0
    a = a + 4
    if op == 5 then
      for i = 1, n do
        refs[i], sources[i] = ARGV[a] + 0, ARGV[a + 1] + 0
        a = a + 2
      end
    else
      for i = 1, n do
        refs[i] = ARGV[a] + 0
        a = a + 1
      end
    end
    results[#results + 1] = admit(n, op == 5, want, count)
  elseif op == 2 then
    a = a + 2
    for _ = 1, n do
      local s = load(ARGV[a] + 0)
      local start, delta, freed = ARGV[a + 1] + 0, ARGV[a + 2] + 0, ARGV[a + 3] + 0
      if delta ~= 0 and s.w == start then
        s.t = s.t + delta
        s.counts = true
      end
      if freed > 0 and s.mine > 0 then
        s.mine = math.max(s.mine - freed, 0)
        s.slots = true
      end
      a = a + 4
    end
  elseif op == 6 then
    -- releases on hashes no other operation of the call reads: only the fields they change
    a = a + 2
    for _ = 1, n do
      local key = KEYS[ARGV[a] + 0]
      local start, delta, freed = ARGV[a + 1] + 0, ARGV[a + 2] + 0, ARGV[a + 3] + 0
      a = a + 4
      local v = redis.call('HMGET', key, 'w', 't', pme)
      local tokens = delta ~= 0 and v[1] and v[1] + 0 == start
      local slots = freed > 0 and v[3] and v[3] + 0 > 0
      if tokens and slots then
        redis.call('HSET', key, 't', (v[2] or 0) + delta, pme, math.max(v[3] - freed, 0))
      elseif tokens then
        redis.call('HSET', key, 't', (v[2] or 0) + delta)
      elseif slots then
        redis.call('HSET', key, pme, math.max(v[3] - freed, 0))
      end
    end
  elseif op == 3 then
    a = a + 2
    local starts = {}
    for i = 1, n do
      local s = load(ARGV[a] + 0)
      local age, win = ARGV[a + 1] + 0, ARGV[a + 2] + 0
      local requests, tokens = ARGV[a + 3] + 0, ARGV[a + 4] + 0
      local slots = ARGV[a + 5] + 0
      a = a + 6
      local start = 0
      if age >= 0 and age < win then
        if s.w > 0 and now - s.w < win then
          s.r = s.r + requests
          s.t = s.t + tokens
          s.counts = true
        else
          s.w, s.x, s.r, s.t = now - age, now - age + win, requests, tokens
          s.opened = true
        end
        start = s.w
      end
      if slots > 0 then
        s.mine = s.mine + slots
        s.slots = true
      end
      starts[i] = start
    end
    results[#results + 1] = starts
  else
    a = a + 2
    for _ = 1, n do
      local s = load(ARGV[a] + 0)
      s.mine = ARGV[a + 1] + 0
      s.slots = true
      s.renew = true
      a = a + 2
    end
  end
end

-- write back what changed, each hash once
for k, s in pairs(st) do
  local f
  if s.opened then
    f = {'w', s.w, 'x', s.x, 'r', s.r, 't', s.t}
  elseif s.counts then
    f = {'r', s.r, 't', s.t}
  else
    f = {}
  end
  if s.slots then
    f[#f + 1] = pme
    f[#f + 1] = s.mine
  end
  -- a lease is set when renewed, or when this instance holds slots and its lease is half gone
  -- (or was never set); renewals every third of a lease keep it from that
  local leased = s.renew or (s.mine > 0 and s.lease < now + lease / 2)
  if leased then
    s.lease = now + lease
    f[#f + 1] = eme
    f[#f + 1] = s.lease
  end
  if #f > 0 then
    redis.call('HSET', KEYS[k], unpack(f))
    if s.opened or leased then
      -- the hash lives as long as its window or any lease held on it
      local ends = s.last
      if s.x > ends then ends = s.x end
      if (s.mine > 0 or leased) and s.lease > ends then ends = s.lease end
      redis.call('PEXPIRE', KEYS[k], math.max(ends - now, 1))
    end
  end
  if s.stale then
    redis.call('HDEL', KEYS[k], unpack(s.stale))
  end
end
return results
