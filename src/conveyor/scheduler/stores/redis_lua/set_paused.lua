-- set_paused: ARGV: now, name, '1' or '0'. Returns 1 if the entry exists.
local key = entry_key(ARGV[2])
if redis.call('EXISTS', key) == 0 then return 0 end
redis.call('HSET', key, 'paused', ARGV[3], 'upd', tostring(NOW))
return 1
