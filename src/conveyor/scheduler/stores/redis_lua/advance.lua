-- advance: compare-and-set of an entry's last fire, adding to its counters.
-- ARGV: now, name, expected last ('' for none), new last, fired, skipped. Returns 1 if set.
local key = entry_key(ARGV[2])
local f = redis.call('HMGET', key, 'd', 'last')
if f[1] == false then return 0 end
local stored = f[2]
if ARGV[3] == '' then
  if stored ~= false then return 0 end
elseif stored == false or tonumber(stored) ~= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', key, 'last', ARGV[4])
redis.call('HINCRBY', key, 'fires', ARGV[5])
redis.call('HINCRBY', key, 'skipped', ARGV[6])
return 1
