-- entries: every entry, as flat lists of
-- {name, definition, source, paused, anchor, last ('' for none), fires, skipped, updated}.
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', P .. ':sched:names')) do
  local f = redis.call('HMGET', entry_key(name), 'd', 'src', 'paused', 'anchor', 'last', 'fires',
    'skipped', 'upd')
  if f[1] ~= false then
    out[#out + 1] = {name, f[1], f[2], f[3], f[4], f[5] or '', f[6], f[7], f[8]}
  end
end
return out
