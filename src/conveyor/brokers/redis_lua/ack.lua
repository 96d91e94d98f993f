-- ack: settle leases successfully; each message becomes a tombstone for the idempotency
-- window. Touches P:m:<id>, P:l:<q>.
-- ARGV: now, window_seconds, then pairs id, token. Returns 1/0 per lease (0: stale token).
local window_ms = tonumber(ARGV[2]) * 1000
local out = {}
for i = 3, #ARGV, 2 do
  local key, q = holder(ARGV[i], ARGV[i + 1])
  if key == nil then
    out[#out + 1] = 0
  else
    redis.call('ZREM', P .. ':l:' .. q, ARGV[i])
    tombstone(ARGV[i], window_ms, '')
    out[#out + 1] = 1
  end
end
return out
