-- Prepended to every conveyor broker script when it is loaded (see conveyor/_redis.py).
--
-- Key layout. P is the key prefix (KEYS[1], "conveyor:{default}" unless the URL gives
-- ?prefix=); its {hash tag} keeps every key of one conveyor in one cluster slot.
--   P:m:<id>       hash, one envelope:
--                    q queue   p priority   b body   md max_deliveries   n enqueue seq
--                    s state: r ready, s scheduled, l leased, x dead, z done (tombstone)
--                    at available_at   d deliveries (grants)   l lost runs
--                    t fencing token of the current lease   le lease expiry
--                    bg begun (at-most-once started)   rv revoked   tm terminate
--                    rs reason (dead)   er last error   u updated_at   dn done_at
--                  A done hash keeps only s, dn and u, and expires natively after the
--                  idempotency window, so a repeated enqueue of the id stays a no-op meanwhile.
--   P:r:<queue>    zset, ready: member "<seq hex>:<id>", score (9 - priority) * 1e13 + due ms,
--                  so ZPOPMIN gives highest priority, then earliest due, then enqueue order
--   P:s:<queue>    zset, scheduled ids by available_at
--   P:l:<queue>    zset, leased ids by lease expiry
--   P:x:<queue>    zset, dead ids by the time they died
--   P:queues       set of every queue name ever used
--   P:seq          enqueue counter;  P:token  fencing-token counter
--   P:wake:<queue> list of wake-up tokens for idle workers blocked in BLPOP (at most 64)
--   P:rate:<key>   string, the next free start slot of a global rate limit
--   P:w / P:wh     hash worker name -> WorkerInfo JSON / zset worker name -> heartbeat
--   P:events       stream, the cluster's event stream: one entry per encoded event, field b
--                  the body; capped at the newest `limit` entries by every XADD (MAXLEN)
--
-- Time: ARGV[1] is "now" in seconds from the caller's injected clock, or "" to use the
-- server's TIME, so that in production the Redis server's clock is the only clock.
-- Lua numbers returned to the client are truncated to integers, so times go back as strings.

-- P and NOW come from conveyor/redis_clock.lua, loaded first.

local function mkey(id) return P .. ':m:' .. id end
local function ready_member(n, id) return string.format('%012x', n) .. ':' .. id end
local function ready_score(p, at) return (9 - p) * 1e13 + math.floor(at * 1000) end
local function num(v, default) return tonumber(v) or default end

-- Make a message ready in its queue (any state it was in must already be cleared).
local function make_ready(id, q, p, at, n)
  redis.call('HSET', mkey(id), 's', 'r', 'at', tostring(at))
  redis.call('ZADD', P .. ':r:' .. q, ready_score(p, at), ready_member(n, id))
end

local function wake(q, count)
  local key = P .. ':wake:' .. q
  for _ = 1, math.min(count, 64) do redis.call('LPUSH', key, '1') end
  redis.call('LTRIM', key, 0, 63)
end

-- Turn a message into a done tombstone that expires after the idempotency window.
local function tombstone(id, window_ms, reason)
  local key = mkey(id)
  redis.call('DEL', key)
  redis.call('HSET', key, 's', 'z', 'dn', tostring(NOW), 'u', tostring(NOW), 'rs', reason)
  redis.call('PEXPIRE', key, math.max(1, math.floor(window_ms)))
end

-- Move due scheduled messages of queue q to ready (a bounded batch per call).
local function promote(q)
  local skey = P .. ':s:' .. q
  local due = redis.call('ZRANGEBYSCORE', skey, '-inf', NOW, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    redis.call('ZREM', skey, id)
    local f = redis.call('HMGET', mkey(id), 'p', 'at', 'n')
    make_ready(id, q, num(f[1], 0), num(f[2], NOW), num(f[3], 0))
  end
end

-- Leases of queue q that ran out: due again, or dead once lost max_deliveries times
-- (a revoked one always comes back, to be recorded as revoked).
local function reclaim(q)
  local lkey = P .. ':l:' .. q
  local expired = redis.call('ZRANGEBYSCORE', lkey, '-inf', NOW, 'LIMIT', 0, 1000)
  for _, id in ipairs(expired) do
    redis.call('ZREM', lkey, id)
    local key = mkey(id)
    local f = redis.call('HMGET', key, 'l', 'md', 'rv', 'p', 'at', 'n')
    local lost = num(f[1], 0) + 1
    redis.call('HSET', key, 'l', lost, 'u', tostring(NOW))
    if lost >= num(f[2], 1) and f[3] ~= '1' then
      redis.call('HSET', key, 's', 'x',
        'rs', 'lease expired ' .. lost .. ' times (max_deliveries)')
      redis.call('ZADD', P .. ':x:' .. q, NOW, id)
    else
      make_ready(id, q, num(f[4], 0), math.min(num(f[5], NOW), NOW), num(f[6], 0))
    end
  end
end

-- The current lease of id, if `token` still holds it: returns the message key and queue.
local function holder(id, token)
  local key = mkey(id)
  local f = redis.call('HMGET', key, 's', 't', 'le', 'q')
  if f[1] ~= 'l' or f[2] ~= token or num(f[3], 0) <= NOW then return nil end
  return key, f[4]
end
