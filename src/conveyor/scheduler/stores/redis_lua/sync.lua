-- sync: make the 'config' entries exactly the given ones, keeping progress and paused flags.
-- ARGV: now, then name, definition pairs.
local wanted = {}
for i = 2, #ARGV, 2 do wanted[ARGV[i]] = true end
for _, name in ipairs(redis.call('SMEMBERS', P .. ':sched:names')) do
  if not wanted[name] and redis.call('HGET', entry_key(name), 'src') == 'config' then
    redis.call('DEL', entry_key(name))
    redis.call('SREM', P .. ':sched:names', name)
  end
end
for i = 2, #ARGV, 2 do upsert(ARGV[i], ARGV[i + 1], 'config') end
return 1
