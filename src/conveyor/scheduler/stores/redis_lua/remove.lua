-- remove: delete an entry. ARGV: now, name. Returns 1 if it existed.
redis.call('SREM', P .. ':sched:names', ARGV[2])
return redis.call('DEL', entry_key(ARGV[2]))
