-- put: add or change a 'runtime' entry; refused (0) when the name is a 'config' entry.
-- ARGV: now, name, definition.
if redis.call('HGET', entry_key(ARGV[2]), 'src') == 'config' then return 0 end
upsert(ARGV[2], ARGV[3], 'runtime')
return 1
