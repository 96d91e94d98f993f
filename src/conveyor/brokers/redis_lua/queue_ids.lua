-- queue_ids: the ids of one queue in one state (or all four), for the admin listing; due
-- scheduled messages are promoted first so ready/scheduled are exact.
-- Touches P:r:<q>, P:s:<q>, P:l:<q>, P:x:<q>, P:m:<id>. ARGV: now, queue, state letter or ''.
local q = ARGV[2]
promote(q)
local out = {}
for _, kind in ipairs({'r', 's', 'l', 'x'}) do
  if ARGV[3] == '' or ARGV[3] == kind then
    for _, member in ipairs(redis.call('ZRANGE', P .. ':' .. kind .. ':' .. q, 0, -1)) do
      out[#out + 1] = kind == 'r' and string.sub(member, 14) or member
    end
  end
end
return out
