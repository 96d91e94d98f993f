-- queue_stats: counts per queue, without changing anything (a due scheduled message counts
-- as ready). Touches P:queues, P:r:<q>, P:s:<q>, P:l:<q>, P:x:<q>. ARGV: now.
-- Returns {queue, ready, scheduled, leased, dead, ...} for queues holding anything.
local out = {}
for _, q in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  local due = redis.call('ZCOUNT', P .. ':s:' .. q, '-inf', NOW)
  local ready = redis.call('ZCARD', P .. ':r:' .. q) + due
  local scheduled = redis.call('ZCARD', P .. ':s:' .. q) - due
  local leased = redis.call('ZCARD', P .. ':l:' .. q)
  local dead = redis.call('ZCARD', P .. ':x:' .. q)
  if ready + scheduled + leased + dead > 0 then
    for _, v in ipairs({q, ready, scheduled, leased, dead}) do out[#out + 1] = v end
  end
end
return out
