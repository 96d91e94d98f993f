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
local mprefix, rprefix, sprefix = P .. ':m:', P .. ':r:', P .. ':s:'
local now_text = tostring(NOW)
local first = last - count + 1
for k = 0, count - 1 do
  local i = 3 + k * 6
  local id, q = ARGV[i], ARGV[i + 1]
  local key = mprefix .. id
  if known(key) then
    out[k + 1] = 0
  else
    local p, delay = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
    local n = first + k
    queues[q] = true
    if delay > 0 then
      local at = NOW + delay
      redis.call('HSET', key, 'q', q, 'p', p, 'md', ARGV[i + 4], 'b', ARGV[i + 5], 'n', n,
        's', 's', 'at', tostring(at))
      redis.call('ZADD', sprefix .. q, at, id)
    else
      -- d (deliveries), l (lost) and u (updated_at) are left out: absent reads as 0 / at
      redis.call('HSET', key, 'q', q, 'p', p, 'md', ARGV[i + 4], 'b', ARGV[i + 5], 'n', n,
        's', 'r', 'at', now_text)
      redis.call('ZADD', rprefix .. q, ready_score(p, NOW), ready_member(n, id))
      woken[q] = (woken[q] or 0) + 1
    end
    out[k + 1] = 1
  end
end
for q in pairs(queues) do redis.call('SADD', P .. ':queues', q) end
for q, woke in pairs(woken) do wake(q, woke) end
return out
