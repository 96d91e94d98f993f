-- confirm: which leases are still held (the current token, not expired on the clock).
-- Read-only. Touches P:m:<id>. ARGV: now, then pairs id, token. Returns 1/0 per lease.
local out = {}
for i = 2, #ARGV, 2 do
  out[#out + 1] = holder(ARGV[i], ARGV[i + 1]) and 1 or 0
end
return out
