-- End of one admitted request: free its parallel slots and correct its token reservation by
-- `delta` (real usage minus the reservation), but only in the window it was reserved in.
--
-- KEYS: per descriptor i: window start, token counter, parallel slot set.
-- ARGV[1] slot id   ARGV[2] token delta
-- ARGV[2 + 2i - 1]: the window start seen at admission (-1 = no token limit)
-- ARGV[2 + 2i]: 1 when the descriptor holds a parallel slot
local slot = ARGV[1]
local delta = tonumber(ARGV[2])
local n = #KEYS / 3
for i = 1, n do
  local wk, tk, pk = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local start = tonumber(ARGV[2 + 2 * i - 1])
  if start >= 0 and delta ~= 0 and tonumber(redis.call('GET', wk)) == start then
    redis.call('INCRBY', tk, delta)
  end
  if ARGV[2 + 2 * i] == '1' then
    redis.call('ZREM', pk, slot)
  end
end
return n
