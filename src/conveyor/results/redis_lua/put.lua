-- put: store outcomes, each unless the stored, unexpired one has a larger fencing token, or
-- the same token while the new one is a bare STARTED and the stored one is not (results/base.py).
-- Touches P:res:<id>, P:resx, P:resh, P:res:ready.
-- ARGV: now, ttl seconds ('' for none), then per outcome: id, token, encoded, ready ('1'/'0'),
-- bare STARTED ('1'/'0'), kept in the hash as 'st' (absent in older records: taken as '1').
-- Returns 1/0 per outcome (stored or refused).
local ttl = tonumber(ARGV[2])
local out = {}
local ready = false
for i = 3, #ARGV, 5 do
  local id = ARGV[i]
  local key = P .. ':res:' .. id
  local f = redis.call('HMGET', key, 'tk', 'ex', 'st')
  local live = f[1] ~= false and (f[2] == false or f[2] == '' or tonumber(f[2]) > NOW)
  local held, token = live and tonumber(f[1]), tonumber(ARGV[i + 1])
  if held and (held > token or (held == token and ARGV[i + 4] == '1' and f[3] == '0')) then
    out[#out + 1] = 0
  else
    redis.call('HSET', key, 'st', ARGV[i + 4])
    if ttl then
      redis.call('HSET', key, 'tk', ARGV[i + 1], 'v', ARGV[i + 2], 'ex', tostring(NOW + ttl))
      redis.call('PEXPIRE', key, math.max(1, math.ceil(ttl * 1000)))
      redis.call('ZADD', P .. ':resx', NOW + ttl, id)
    else
      redis.call('HSET', key, 'tk', ARGV[i + 1], 'v', ARGV[i + 2], 'ex', '')
      redis.call('PERSIST', key)
      redis.call('ZREM', P .. ':resx', id)
    end
    redis.call('ZADD', P .. ':resh', NOW, id)
    if ARGV[i + 3] == '1' then ready = true end
    out[#out + 1] = 1
  end
end
if ready then redis.call('PUBLISH', P .. ':res:ready', '1') end
return out
