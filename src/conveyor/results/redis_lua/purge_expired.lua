-- purge_expired: delete outcomes whose expiry has passed. Touches P:resx, P:resh, P:res:<id>.
-- ARGV: now. Returns how many (including ones the server had already expired by itself).
local gone = redis.call('ZRANGEBYSCORE', P .. ':resx', '-inf', NOW)
for _, id in ipairs(gone) do
  redis.call('DEL', P .. ':res:' .. id)
  redis.call('ZREM', P .. ':resx', id)
  redis.call('ZREM', P .. ':resh', id)
end
return #gone
