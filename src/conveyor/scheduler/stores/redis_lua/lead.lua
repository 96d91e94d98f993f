-- lead: take or renew the leader lease. ARGV: now, holder, ttl seconds.
-- Returns {holder ('' for none), seconds remaining, term}.
local key = P .. ':sched:leader'
local l = redis.call('HMGET', key, 'h', 'ex', 't')
local free = l[1] == false or l[1] == '' or tonumber(l[2]) <= NOW
if free or l[1] == ARGV[2] then
  local term = tonumber(l[3]) or 0
  if l[1] ~= ARGV[2] then term = term + 1 end
  redis.call('HSET', key, 'h', ARGV[2], 'ex', tostring(NOW + tonumber(ARGV[3])), 't', tostring(term))
end
return leadership()
