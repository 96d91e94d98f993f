-- forget: delete outcomes. Touches P:res:<id>, P:resx, P:resh. ARGV: now (unused), then ids.
-- A script, not MULTI: a server at maxmemory under noeviction refuses to queue commands in a
-- transaction, but runs deletes, which free memory.
for i = 2, #ARGV do
  local id = ARGV[i]
  redis.call('DEL', P .. ':res:' .. id)
  redis.call('ZREM', P .. ':resx', id)
  redis.call('ZREM', P .. ':resh', id)
end
return #ARGV - 1
