-- purge_dead: delete dead letters that died at least `older_than` seconds ago, of the given
-- queues or (none given) of every queue. Touches P:queues, P:x:<q>, P:m:<id>.
-- ARGV: now, older_than, queue... Returns how many.
local cutoff = NOW - tonumber(ARGV[2])
local queues = {}
for i = 3, #ARGV do queues[#queues + 1] = ARGV[i] end
if #queues == 0 then queues = redis.call('SMEMBERS', P .. ':queues') end
local deleted = 0
for _, q in ipairs(queues) do
  local xkey = P .. ':x:' .. q
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', xkey, '-inf', cutoff)) do
    redis.call('DEL', mkey(id))
    redis.call('ZREM', xkey, id)
    deleted = deleted + 1
  end
end
return deleted
