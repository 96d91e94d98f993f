-- reserve: lease up to `limit` due envelopes, the queues served in the order given.
-- First promotes due scheduled messages and reclaims expired leases of those queues, so
-- recovery happens on every reservation, not only at start-up.
-- Touches P:m:<id>, P:r:<q>, P:s:<q>, P:l:<q>, P:x:<q>, P:token.
-- ARGV: now, limit, lease_for, queue...
-- Returns {token, expires, id, queue, priority, body, max_deliveries, deliveries, begun,
-- revoked, terminate, ...}; when nothing was due, {'', seconds until the next scheduled
-- message or lease expiry of these queues ('' if none)}.
local limit, lease_for = tonumber(ARGV[2]), tonumber(ARGV[3])
local expires = NOW + lease_for
local out = {}
local token = nil
local granted = 0
for qi = 4, #ARGV do
  local q = ARGV[qi]
  promote(q)
  reclaim(q)
  if granted < limit then
    local popped = redis.call('ZPOPMIN', P .. ':r:' .. q, limit - granted)
    for i = 1, #popped, 2 do
      local id = string.sub(popped[i], 14)
      local key = mkey(id)
      if token == nil then token = redis.call('INCR', P .. ':token') end
      local d = redis.call('HINCRBY', key, 'd', 1)
      redis.call('HSET', key, 's', 'l', 't', token, 'le', tostring(expires))
      redis.call('ZADD', P .. ':l:' .. q, expires, id)
      local f = redis.call('HMGET', key, 'p', 'b', 'md', 'bg', 'rv', 'tm')
      out[#out + 1] = id
      out[#out + 1] = q
      out[#out + 1] = f[1]
      out[#out + 1] = f[2]
      out[#out + 1] = f[3]
      out[#out + 1] = d
      out[#out + 1] = f[4] or '0'
      out[#out + 1] = f[5] or '0'
      out[#out + 1] = f[6] or '0'
      granted = granted + 1
    end
  end
end
if token ~= nil then
  table.insert(out, 1, tostring(expires))
  table.insert(out, 1, token)
  return out
end
local soonest = nil
for qi = 4, #ARGV do
  for _, kind in ipairs({':s:', ':l:'}) do
    local first = redis.call('ZRANGE', P .. kind .. ARGV[qi], 0, 0, 'WITHSCORES')
    if #first > 0 then
      local t = tonumber(first[2])
      if soonest == nil or t < soonest then soonest = t end
    end
  end
end
return {'', soonest and tostring(math.max(0, soonest - NOW)) or ''}
