-- Prepended to every conveyor schedule-store script when it is loaded.
--
-- Key layout. P is the key prefix (KEYS[1], as for the broker and result store).
--   P:sched:names      set of entry names
--   P:sched:e:<name>   hash, one entry: d definition (JSON, opaque here), src 'config' or
--                      'runtime', paused '0'/'1', anchor, last (scheduled time of the last
--                      fire sent or skipped; absent before the first), fires, skipped, upd
--   P:sched:leader     hash: h holder, ex expiry time, t term (grows on each change of holder);
--                      expiry is compared with NOW, not left to a native TTL, so that an
--                      injected clock drives it in tests exactly as the server's does in use
--
-- Time: ARGV[1] is "now" from the caller's injected clock, or "" for the server's TIME.

local function entry_key(name) return P .. ':sched:e:' .. name end

local function upsert(name, definition, source)
  local key = entry_key(name)
  local old = redis.call('HMGET', key, 'd', 'src')
  if old[1] == false then
    redis.call('HSET', key, 'd', definition, 'src', source, 'paused', '0', 'anchor', tostring(NOW),
      'fires', '0', 'skipped', '0', 'upd', tostring(NOW))
    redis.call('SADD', P .. ':sched:names', name)
  elseif old[1] ~= definition or old[2] ~= source then
    redis.call('HSET', key, 'd', definition, 'src', source, 'upd', tostring(NOW))
  end
end

local function leadership()
  local l = redis.call('HMGET', P .. ':sched:leader', 'h', 'ex', 't')
  local term = tonumber(l[3]) or 0
  if l[1] == false or l[1] == '' or tonumber(l[2]) <= NOW then return {'', '0', tostring(term)} end
  return {l[1], tostring(tonumber(l[2]) - NOW), tostring(term)}
end
