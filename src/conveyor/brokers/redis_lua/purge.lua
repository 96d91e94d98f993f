-- purge: delete ready and scheduled messages of the queues (and dead ones if asked); leased
-- ones are left to their workers. Touches P:r:<q>, P:s:<q>, P:x:<q>, P:m:<id>.
-- ARGV: now, include_dead ('1'/'0'), queue... Returns how many were deleted.
local deleted = 0
for i = 3, #ARGV do
  local q = ARGV[i]
  local kinds = ARGV[2] == '1' and {'r', 's', 'x'} or {'r', 's'}
  for _, kind in ipairs(kinds) do
    local zkey = P .. ':' .. kind .. ':' .. q
    for _, member in ipairs(redis.call('ZRANGE', zkey, 0, -1)) do
      redis.call('DEL', mkey(kind == 'r' and string.sub(member, 14) or member))
      deleted = deleted + 1
    end
    redis.call('DEL', zkey)
  end
end
return deleted
