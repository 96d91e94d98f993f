-- enqueue: store a batch, all or none; an id already stored (or a live tombstone) is a no-op.
-- Touches P:m:<id>, P:r:<q> or P:s:<q>, P:queues, P:seq, P:wake:<q>. Enqueue numbers (the
-- order of equal-priority, equally due messages) are taken for the whole batch at once.
-- ARGV: now, window, then per envelope 6 values: id, queue, priority, delay, max_deliveries,
-- body. A tombstone older than the window (by the caller's clock) no longer counts; the server
-- also expires it natively.
-- Returns 1/0 per envelope (newly stored or not).
local out = {}
local woken = {}
local window = tonumber(ARGV[2])
local function known(key)
  if redis.call('EXISTS', key) == 0 then return false end
  local f = redis.call('HMGET', key, 's', 'dn')
  if f[1] == 'z' and num(f[2], 0) + window <= NOW then
    redis.call('DEL', key)
    return false
  end
  return true
end
-- One INCRBY reserves the batch's enqueue numbers; one SADD per queue.
local count = (#ARGV - 2) / 6
local last = redis.call('INCRBY', P .. ':seq', count)
local queues = {}
for k = 0, count - 1 do
  local i = 3 + k * 6
  local id, q = ARGV[i], ARGV[i + 1]
  local p, delay = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local key = mkey(id)
  if known(key) then
    out[#out + 1] = 0
  else
    local n = last - count + 1 + k
    local at = NOW + math.max(0, delay)
    local state = delay > 0 and 's' or 'r'
    -- d (deliveries), l (lost) and u (updated_at) are left out: absent reads as 0 / at
    redis.call('HSET', key, 'q', q, 'p', p, 'md', ARGV[i + 4], 'b', ARGV[i + 5], 'n', n,
      's', state, 'at', tostring(at))
    queues[q] = true
    if delay > 0 then
      redis.call('ZADD', P .. ':s:' .. q, at, id)
    else
      redis.call('ZADD', P .. ':r:' .. q, ready_score(p, at), ready_member(n, id))
      woken[q] = (woken[q] or 0) + 1
    end
    out[#out + 1] = 1
  end
end
for q in pairs(queues) do redis.call('SADD', P .. ':queues', q) end
for q, woke in pairs(woken) do wake(q, woke) end
return out
