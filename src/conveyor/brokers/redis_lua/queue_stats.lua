-- queue_stats: counts per queue, without changing anything (a due scheduled message counts
-- as ready), and the age of the oldest ready message. Touches P:queues, P:r:<q>, P:s:<q>,
-- P:l:<q>, P:x:<q>. ARGV: now.
-- The oldest ready message is the earliest of the head of each priority band of P:r:<q>
-- (score (9 - p) * 1e13 + due ms; bands 0-9, the priorities conveyor sends) and the earliest
-- due member of P:s:<q>: at most 11 lookups per queue, whatever the backlog.
-- Returns {queue, ready, scheduled, leased, dead, age (seconds, text), ...} for queues holding
-- anything.
local function oldest_ready(q)
  local oldest = nil
  local rkey = P .. ':r:' .. q
  for p = 0, 9 do
    local band = (9 - p) * 1e13
    local head = redis.call('ZRANGEBYSCORE', rkey, band, '(' .. (band + 1e13), 'WITHSCORES',
      'LIMIT', 0, 1)
    if head[2] then
      local at = (tonumber(head[2]) - band) / 1000
      if oldest == nil or at < oldest then oldest = at end
    end
  end
  local due = redis.call('ZRANGEBYSCORE', P .. ':s:' .. q, '-inf', NOW, 'WITHSCORES',
    'LIMIT', 0, 1)
  if due[2] then
    local at = tonumber(due[2])
    if oldest == nil or at < oldest then oldest = at end
  end
  if oldest == nil then return 0 end
  return math.max(0, NOW - oldest)
end

local out = {}
for _, q in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  local due = redis.call('ZCOUNT', P .. ':s:' .. q, '-inf', NOW)
  local ready = redis.call('ZCARD', P .. ':r:' .. q) + due
  local scheduled = redis.call('ZCARD', P .. ':s:' .. q) - due
  local leased = redis.call('ZCARD', P .. ':l:' .. q)
  local dead = redis.call('ZCARD', P .. ':x:' .. q)
  if ready + scheduled + leased + dead > 0 then
    local age = ready > 0 and oldest_ready(q) or 0
    for _, v in ipairs({q, ready, scheduled, leased, dead, tostring(age)}) do
      out[#out + 1] = v
    end
  end
end
return out
