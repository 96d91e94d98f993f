-- resign: give the lease up if ARGV[2] holds it. ARGV: now, holder.
local key = P .. ':sched:leader'
if redis.call('HGET', key, 'h') == ARGV[2] then redis.call('HSET', key, 'h', '', 'ex', '0') end
return 1
