-- throttle: take the next start slot of a global rate limit; slots are `interval` apart.
-- Touches P:rate:<key> (expires once it is in the past). ARGV: now, key, interval.
-- Returns the seconds from now until the slot taken, as a string.
local key = P .. ':rate:' .. ARGV[2]
local interval = tonumber(ARGV[3])
local slot = math.max(tonumber(redis.call('GET', key) or NOW) or NOW, NOW)
redis.call('SET', key, tostring(slot + interval),
  'PX', math.max(1, math.ceil((slot + interval - NOW) * 1000) + 1000))
return tostring(slot - NOW)
