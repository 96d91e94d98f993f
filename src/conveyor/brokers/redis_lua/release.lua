-- release: put a leased envelope back, due after `delay`. `lost` = 1: the run was cut off
-- and counts toward max_deliveries (dead once reached); `unstarted` = 1: the delivery is not
-- counted. Touches P:m:<id>, P:l:<q>, P:r:<q> or P:s:<q> or P:x:<q>, P:wake:<q>.
-- ARGV: now, id, token, delay, body ('' keeps it), error ('' keeps it), lost, unstarted.
-- Returns 1, or 0 for a stale token.
local id = ARGV[2]
local key, q = holder(id, ARGV[3])
if key == nil then return 0 end
local delay = tonumber(ARGV[4])
redis.call('ZREM', P .. ':l:' .. q, id)
if ARGV[5] ~= '' then redis.call('HSET', key, 'b', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', key, 'er', ARGV[6]) end
if ARGV[8] == '1' then redis.call('HINCRBY', key, 'd', -1) end
local f = redis.call('HMGET', key, 'l', 'md', 'rv', 'p', 'n')
local lost = num(f[1], 0) + tonumber(ARGV[7])
local at = NOW + delay
redis.call('HSET', key, 'l', lost, 'u', tostring(NOW), 'at', tostring(at))
if ARGV[7] == '1' and lost >= num(f[2], 1) and f[3] ~= '1' then
  redis.call('HSET', key, 's', 'x', 'rs', 'run lost ' .. lost .. ' times (max_deliveries)')
  redis.call('ZADD', P .. ':x:' .. q, NOW, id)
elseif delay > 0 then
  redis.call('HSET', key, 's', 's')
  redis.call('ZADD', P .. ':s:' .. q, at, id)
else
  make_ready(id, q, num(f[4], 0), at, num(f[5], 0))
  wake(q, 1)
end
return 1
