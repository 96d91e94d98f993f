-- register_worker: insert or replace a worker's record, and forget records whose last
-- heartbeat is older than the retention (never the one being registered). Touches P:w, P:wh.
-- ARGV: now, name, info JSON, heartbeat_at, retention_seconds.
redis.call('HSET', P .. ':w', ARGV[2], ARGV[3])
redis.call('ZADD', P .. ':wh', tonumber(ARGV[4]), ARGV[2])
local old = redis.call('ZRANGEBYSCORE', P .. ':wh', '-inf', NOW - tonumber(ARGV[5]))
local forgotten = 0
for _, name in ipairs(old) do
  if name ~= ARGV[2] then
    redis.call('HDEL', P .. ':w', name)
    redis.call('ZREM', P .. ':wh', name)
    forgotten = forgotten + 1
  end
end
return forgotten
