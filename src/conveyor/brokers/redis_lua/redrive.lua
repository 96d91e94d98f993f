-- redrive: dead letters become ready again with fresh delivery counts.
-- Touches P:m:<id>, P:x:<q>, P:r:<q>, P:wake:<q>. ARGV: now, id... Returns how many moved.
local moved = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local key = mkey(id)
  local f = redis.call('HMGET', key, 's', 'q', 'p', 'n')
  if f[1] == 'x' then
    redis.call('ZREM', P .. ':x:' .. f[2], id)
    redis.call('HSET', key, 'l', 0, 'bg', '0', 'rs', '', 'u', tostring(NOW))
    make_ready(id, f[2], num(f[3], 0), NOW, num(f[4], 0))
    wake(f[2], 1)
    moved = moved + 1
  end
end
return moved
