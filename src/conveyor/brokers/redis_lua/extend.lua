-- extend: push each still-held lease to now + lease_for.
-- Touches P:m:<id>, P:l:<q>.
-- ARGV: now, lease_for, then pairs id, token.
-- Returns per lease {revoked, terminate} as '1'/'0', or 'lost'.
local expires = NOW + tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 2 do
  local key, q = holder(ARGV[i], ARGV[i + 1])
  if key == nil then
    out[#out + 1] = 'lost'
  else
    redis.call('HSET', key, 'le', tostring(expires))
    redis.call('ZADD', P .. ':l:' .. q, expires, ARGV[i])
    local f = redis.call('HMGET', key, 'rv', 'tm')
    out[#out + 1] = (f[1] or '0') .. (f[2] or '0')
  end
end
table.insert(out, 1, tostring(expires))
return out
