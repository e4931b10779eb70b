-- One call carries the limiter work of many requests (batched by the gateway while a call is in
-- flight): admissions of new requests, releases of finished ones (parallel slots freed, token
-- reservations reconciled), counts made in memory while Redis was failing (folds) and lease
-- renewals. Each admission is all-or-nothing over its own descriptors: it counts on all of them
-- only if none is over its limit. Fixed window per descriptor, started by the first request
-- after the previous window expired; times from the Redis clock (milliseconds).
--
-- One string value per descriptor (KEYS, each distinct descriptor of the call once), read once
-- (GET) and written back once (SET with PX; DEL when nothing in it lives on), however many
-- operations of the call touch it, and not written at all when nothing of it changed. Packed
-- with `struct`, little-endian doubles (exact for these integers):
--   '<dddd'   w window start, x window end, r requests in it, t tokens in it;
--   then per instance holding slots there, '<c16dd': its id (16 characters), p the slots it
--   holds, e when its lease ends.
-- Slots count while their instance's lease runs: a live instance renews its leases (op 4),
-- so the slots of an instance that died free themselves when its leases end. A write drops the
-- entries of instances holding no slot and of those whose lease ended; the key lives until its
-- window or the last lease on it ends.
--
-- ARGV[1] lease (ms)   ARGV[2] this instance's id (16 characters)   ARGV[3] the numbers that
--   follow, packed as little-endian doubles (one argument however large the batch: Redis
--   and the gateway parse one string instead of one per number); numbered here as if each
--   were an argument from 3 on: A[3] the number of descriptors d, then d descriptors: key
--   index, rpm, tpm, max parallel (-1 = no limit), window (ms), gate (-1 = always enforced,
--   else enforced only while the admission's source descriptor, an earlier one of the same
--   admission, is at least that saturated: max of requests/rpm and tokens/tpm before this
--   request; counted either way);
-- then one op after the other:
--   admissions: 1, n, count, m, then n descriptor indexes, then m token amounts: m admissions
--     over the same n descriptors, one after the other, each of `count` requests (1, or a
--     batch's lines) reserving its own tokens. With gates: 5, n, count, m, then n pairs of
--     descriptor index and source (1-based position in the admission, 0 = none), then the m
--     token amounts.
--   release (of finished requests, summed by the gateway per descriptor and window): 2, n,
--     then n times: key index, a window start (-1 = none), token delta for that window (applied
--     only if it is still the descriptor's window), slots of this instance freed.
--   fold: 3, n, then per descriptor: key index, age of its window (ms; -1 = no counts),
--     window (ms), requests, tokens, slots. The counts go to the open window (or open one
--     that started `age` ago), the slots to this instance's.
--   renewal: 4, n, then per descriptor: key index, slots this instance holds there (set, not
--     added: it also repairs a count Redis lost or got wrong), and a new lease.
-- The gateway sends the renewals first (the counts as they were before the call), then the
-- releases (all of them happened before the call), then the rest in the order it came.
--
-- Returns one string of little-endian doubles: per admission op and fold, in order, the
-- number of values of its entry, then the entry (an item that is itself a list is spread out
-- in place). Admissions: the counters of each of
-- the n descriptors as the first of the m admissions found them, {start_1, requests_1,
-- tokens_1, ...} (now, 0, 0 when the window had ended), then, only when one of the m was
-- refused, one item per admission: 0 when admitted, else {1, i, kind, current, limit, start,
-- saturation} for its first descriptor over its limit (kind 1 = requests, 2 = tokens, 3 =
-- max_parallel_requests). Every admitted admission adds `count` requests and its tokens to
-- the counters of its descriptors that have an rpm or tpm limit, so the gateway works out the
-- counters each one saw. Fold: the window start each descriptor's counts went to (0 = none).
local lease = ARGV[1] + 0
local me = ARGV[2]
local pack, unpack, spread = struct.pack, struct.unpack, unpack

-- the packed numbers, numbered from 3 (A[3] is the first)
local A = {}
local nargs = 2
do
  local blob = ARGV[3] or ''
  local count, pos = math.floor(#blob / 8), 1
  while count - (nargs - 2) >= 8 do
    local i = nargs + 1
    A[i], A[i + 1], A[i + 2], A[i + 3], A[i + 4], A[i + 5], A[i + 6], A[i + 7], pos =
      unpack('<dddddddd', blob, pos)
    nargs = nargs + 8
  end
  while nargs - 2 < count do
    nargs = nargs + 1
    A[nargs], pos = unpack('<d', blob, pos)
  end
end
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)

-- the values as loaded and changed, by key index: window start and end, requests, tokens;
-- this instance's slots (counted whatever its lease says: it is alive) and lease; the live
-- slots of the other instances, when their last lease ends and their entries (packed); whether
-- anything changed, whether this instance's lease is renewed
local W, X, R, T, MINE, LEASE, OTHERS, LAST, REST, CHANGED, RENEW =
  {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}
-- the key indexes loaded, in order
local loaded = {}

local function load(k)
  if W[k] then return end
  local v = redis.call('GET', KEYS[k])
  local w, x, r, t, mine, ends, others, last, rest = 0, 0, 0, 0, 0, 0, 0, 0, ''
  if v then
    local pos
    w, x, r, t, pos = unpack('<dddd', v)
    local size, keep = #v, nil
    while pos < size do
      local id, p, e, nxt = unpack('<c16dd', v, pos)
      if id == me then
        mine, ends = p, e
      elseif e > now and p > 0 then
        others = others + p
        if e > last then last = e end
        keep = keep or {}
        keep[#keep + 1] = string.sub(v, pos, nxt - 1)
      end
      pos = nxt
    end
    if keep then rest = table.concat(keep) end
  end
  W[k], X[k], R[k], T[k], MINE[k], LEASE[k], OTHERS[k], LAST[k], REST[k] =
    w, x, r, t, mine, ends, others, last, rest
  CHANGED[k], RENEW[k] = false, false
  loaded[#loaded + 1] = k
end

-- the distinct descriptors by index: key index, rpm, tpm, parallel, window, gate, and whether
-- it counts requests and tokens (an rpm or a tpm)
local DK, DRPM, DTPM, DPAR, DWIN, DGATE, DCOUNT = {}, {}, {}, {}, {}, {}, {}
local a = 4
for j = 1, A[3] do
  local rpm, tpm = A[a + 1], A[a + 2]
  DK[j], DRPM[j], DTPM[j], DPAR[j], DWIN[j], DGATE[j] =
    A[a], rpm, tpm, A[a + 3], A[a + 4], A[a + 5]
  DCOUNT[j] = rpm >= 0 or tpm >= 0
  a = a + 6
end

-- the descriptors of the admission op at hand (reused), their gating sources, and what the
-- gated ones' sources had counted before the admission at hand
local refs, sources, seen_r, seen_t = {}, {}, {}, {}

-- count `count` requests and `want` tokens on descriptor `d` (key `k`), and `slots` slots
local function add(d, k, count, want, slots)
  if DCOUNT[d] then
    local w = W[k]
    if w > 0 and now - w < DWIN[d] then
      R[k] = R[k] + count
      T[k] = T[k] + want
    else
      W[k], X[k], R[k], T[k] = now, now + DWIN[d], count, want
    end
  end
  if DPAR[d] >= 0 then MINE[k] = MINE[k] + slots end
  CHANGED[k] = true
end

-- one admission over the n descriptors of `refs`: nil when counted, else its refusal
local function admit(n, gated, want, count)
  for i = 1, n do
    local d = refs[i]
    local k = DK[d]
    local rpm, tpm, par = DRPM[d], DTPM[d], DPAR[d]
    local sat = 0
    local enforce = true
    if gated and DGATE[d] >= 0 and sources[i] >= 1 and sources[i] < i then
      local j = sources[i]
      local src = refs[j]
      if DRPM[src] > 0 then sat = math.max(sat, seen_r[j] / DRPM[src]) end
      if DTPM[src] > 0 then sat = math.max(sat, seen_t[j] / DTPM[src]) end
      enforce = sat >= DGATE[d]
    end
    local requests, tokens = 0, 0
    if rpm >= 0 or tpm >= 0 then
      local start = now
      local w = W[k]
      if w > 0 and now - w < DWIN[d] then
        requests, tokens, start = R[k], T[k], w
      end
      if enforce and rpm >= 0 and requests + count > rpm then
        return {1, i, 1, requests, rpm, start, sat}
      end
      if enforce and tpm >= 0 then
        local over
        if want > 0 then over = tokens + want > tpm else over = tokens >= tpm end
        if over then return {1, i, 2, tokens, tpm, start, sat} end
      end
    end
    if par >= 0 then
      local in_flight = MINE[k] + OTHERS[k]
      if enforce and in_flight + 1 > par then
        return {1, i, 3, in_flight, par, now, sat}
      end
    end
    if gated then
      seen_r[i], seen_t[i] = requests, tokens
    end
  end
  for i = 1, n do
    local d = refs[i]
    add(d, DK[d], count, want, 1)
  end
  return nil
end

-- an admission op at A[a] (1 or 5): its answer, and where the next op starts
local function admissions(gated)
  local n, count, m = A[a + 1], A[a + 2], A[a + 3]
  a = a + 4
  if gated then
    for i = 1, n do
      refs[i], sources[i] = A[a], A[a + 1]
      a = a + 2
    end
  else
    for i = 1, n do
      refs[i] = A[a]
      a = a + 1
    end
  end
  local first, sum = a, 0
  for j = 0, m - 1 do
    sum = sum + A[first + j]
  end
  a = first + m
  -- the counters before the first admission; and whether all m certainly fit (not gated, no
  -- descriptor twice, every limit holds with all of them counted): then they are counted at once
  local out = {}
  local all = not gated
  for i = 1, n do
    local d = refs[i]
    local k = DK[d]
    load(k)
    local start, requests, tokens = now, 0, 0
    local w = W[k]
    if w > 0 and now - w < DWIN[d] then
      start, requests, tokens = w, R[k], T[k]
    end
    out[3 * i - 2], out[3 * i - 1], out[3 * i] = start, requests, tokens
    if all then
      for j = 1, i - 1 do
        if DK[refs[j]] == k then all = false end
      end
      local rpm, tpm, par = DRPM[d], DTPM[d], DPAR[d]
      if (rpm >= 0 and requests + m * count > rpm)
        or (tpm >= 0 and tokens + sum >= tpm)
        or (par >= 0 and MINE[k] + OTHERS[k] + m > par) then
        all = false
      end
    end
  end
  if all then
    for i = 1, n do
      local d = refs[i]
      add(d, DK[d], m * count, sum, m)
    end
    return out
  end
  -- one after the other
  local answers, refused = {}, false
  for j = 1, m do
    local r = admit(n, gated, A[first + j - 1], count)
    if r then
      answers[j] = r
      refused = true
    else
      answers[j] = 0
    end
  end
  if refused then
    local o = 3 * n
    for j = 1, m do
      out[o + j] = answers[j]
    end
  end
  return out
end

local results = {}
while a <= nargs do
  local op, n = A[a], A[a + 1]
  if op == 1 or op == 5 then
    results[#results + 1] = admissions(op == 5)
  elseif op == 2 then
    a = a + 2
    for _ = 1, n do
      local k = A[a]
      load(k)
      local start, delta, freed = A[a + 1], A[a + 2], A[a + 3]
      if delta ~= 0 and W[k] == start then
        T[k] = T[k] + delta
        CHANGED[k] = true
      end
      if freed > 0 and MINE[k] > 0 then
        MINE[k] = math.max(MINE[k] - freed, 0)
        CHANGED[k] = true
      end
      a = a + 4
    end
  elseif op == 3 then
    a = a + 2
    local starts = {}
    for i = 1, n do
      local k = A[a]
      load(k)
      local age, win = A[a + 1], A[a + 2]
      local requests, tokens = A[a + 3], A[a + 4]
      local slots = A[a + 5]
      a = a + 6
      local start = 0
      if age >= 0 and age < win then
        local w = W[k]
        if w > 0 and now - w < win then
          R[k] = R[k] + requests
          T[k] = T[k] + tokens
        else
          W[k], X[k], R[k], T[k] = now - age, now - age + win, requests, tokens
        end
        start = W[k]
        CHANGED[k] = true
      end
      if slots > 0 then
        MINE[k] = MINE[k] + slots
        CHANGED[k] = true
      end
      starts[i] = start
    end
    results[#results + 1] = starts
  else
    a = a + 2
    for _ = 1, n do
      local k = A[a]
      load(k)
      MINE[k] = A[a + 1]
      CHANGED[k], RENEW[k] = true, true
      a = a + 2
    end
  end
end

-- write back what changed, each value once
local half = now + lease / 2
for _, k in ipairs(loaded) do
  local mine = MINE[k]
  -- a lease is set when renewed, or when this instance holds slots and its lease is half gone
  -- (or was never set); renewals every third of a lease keep it from that
  if RENEW[k] or (mine > 0 and LEASE[k] < half) then
    LEASE[k] = now + lease
    CHANGED[k] = true
  end
  if CHANGED[k] then
    -- the value lives as long as its window or any lease held on it
    local ends = X[k]
    if LAST[k] > ends then ends = LAST[k] end
    if mine > 0 and LEASE[k] > ends then ends = LEASE[k] end
    if ends <= now then
      redis.call('DEL', KEYS[k])
    elseif mine > 0 then
      redis.call('SET', KEYS[k],
        pack('<ddddc16dd', W[k], X[k], R[k], T[k], me, mine, LEASE[k]) .. REST[k],
        'PX', ends - now)
    else
      redis.call('SET', KEYS[k], pack('<dddd', W[k], X[k], R[k], T[k]) .. REST[k],
        'PX', ends - now)
    end
  end
end
-- the answer: each entry's length, then its values (a refusal's seven in place of its item)
local flat = {}
for _, entry in ipairs(results) do
  local at = #flat + 1
  flat[at] = 0
  for _, v in ipairs(entry) do
    if type(v) == 'table' then
      for _, x in ipairs(v) do flat[#flat + 1] = x end
    else
      flat[#flat + 1] = v
    end
  end
  flat[at] = #flat - at
end
local parts, i, total = {}, 1, #flat
while i <= total do
  local j = math.min(i + 31, total)
  parts[#parts + 1] = pack('<' .. string.rep('d', j - i + 1), spread(flat, i, j))
  i = j + 1
end
return table.concat(parts)
