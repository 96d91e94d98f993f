-- revoke: a leased message is flagged (its holder learns on the next extend); a waiting or
-- dead one becomes a tombstone; an unknown id gets one, so a later enqueue of it is a no-op.
-- Touches P:m:<id>, P:r:<q>, P:s:<q>, P:x:<q>, P:token.
-- ARGV: now, terminate ('1'/'0'), window_seconds, id...
-- Returns per id {outcome: flagged|removed|unknown, fresh token}.
local window_ms = tonumber(ARGV[3]) * 1000
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local key = mkey(id)
  local f = redis.call('HMGET', key, 's', 'q', 'n', 'tm')
  local outcome = 'unknown'
  if f[1] == 'l' then
    redis.call('HSET', key, 'rv', '1')
    if ARGV[2] == '1' then redis.call('HSET', key, 'tm', '1') end
    outcome = 'flagged'
  elseif f[1] == 'r' or f[1] == 's' or f[1] == 'x' then
    redis.call('ZREM', P .. ':r:' .. f[2], ready_member(num(f[3], 0), id))
    redis.call('ZREM', P .. ':s:' .. f[2], id)
    redis.call('ZREM', P .. ':x:' .. f[2], id)
    tombstone(id, window_ms, 'revoked')
    outcome = 'removed'
  elseif f[1] == false then
    tombstone(id, window_ms, 'revoked')
  end
  out[#out + 1] = outcome
  out[#out + 1] = redis.call('INCR', P .. ':token')
end
return out
