-- begin: mark leased envelopes as started by an at-most-once run.
-- Touches P:m:<id>. ARGV: now, then pairs id, token. Returns 1/0 per lease (0: stale).
local out = {}
for i = 2, #ARGV, 2 do
  local key = holder(ARGV[i], ARGV[i + 1])
  if key == nil then
    out[#out + 1] = 0
  else
    redis.call('HSET', key, 'bg', '1')
    out[#out + 1] = 1
  end
end
return out
