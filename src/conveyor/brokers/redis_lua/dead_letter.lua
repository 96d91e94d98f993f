-- dead_letter: move a leased envelope to the dead letters of its queue with a reason.
-- Touches P:m:<id>, P:l:<q>, P:x:<q>. ARGV: now, id, token, reason. Returns 1, or 0 (stale).
local id = ARGV[2]
local key, q = holder(id, ARGV[3])
if key == nil then return 0 end
redis.call('ZREM', P .. ':l:' .. q, id)
redis.call('HSET', key, 's', 'x', 'rs', ARGV[4], 'u', tostring(NOW))
redis.call('ZADD', P .. ':x:' .. q, NOW, id)
return 1
