-- join_chord: add a member to a chord's set and return the set's size.
-- Touches P:chord:<id> (a set, expiring with outcomes). ARGV: now, ttl ('' for none), chord id,
-- member id.
local key = P .. ':chord:' .. ARGV[3]
redis.call('SADD', key, ARGV[4])
local ttl = tonumber(ARGV[2])
if ttl then
  redis.call('PEXPIRE', key, math.max(1, math.ceil(ttl * 1000)))
end
return redis.call('SCARD', key)
