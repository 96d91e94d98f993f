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
local expires_text = tostring(expires)
local out = {'', expires_text}  -- the token goes first once one is taken
local n = 2
local token = nil
local granted = 0
for qi = 4, #ARGV do
  local q = ARGV[qi]
  promote(q)
  reclaim(q)
  if granted < limit then
    local popped = redis.call('ZPOPMIN', P .. ':r:' .. q, limit - granted)
    local lkey = P .. ':l:' .. q
    for i = 1, #popped, 2 do
      local id = string.sub(popped[i], 14)
      local key = mkey(id)
      if token == nil then token = redis.call('INCR', P .. ':token') end
      local f = redis.call('HMGET', key, 'p', 'b', 'md', 'bg', 'rv', 'tm', 'd')
      local d = num(f[7], 0) + 1
      -- q is rewritten so that a hash missing it (not written by conveyor) can still be
      -- settled: the worker dead-letters such a delivery as defective
      redis.call('HSET', key, 's', 'l', 't', token, 'le', expires_text, 'd', d, 'q', q)
      redis.call('ZADD', lkey, expires, id)
      out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = id, q, f[1], f[2], f[3]
      out[n + 6], out[n + 7], out[n + 8], out[n + 9] = d, f[4] or '0', f[5] or '0', f[6] or '0'
      n = n + 9
      granted = granted + 1
    end
  end
end
if token ~= nil then
  out[1] = token
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
