-- publish_events: append a batch of encoded events to the event stream, in order, and trim it
-- to its newest `limit` entries. Touches P:events. ARGV: now (unused), limit, body, body, ...
-- Exact MAXLEN, not `~`: the contract keeps at most `limit` entries, and each XADD trims only
-- the entries that fell off, so the cost does not grow with the stream.
local limit = tonumber(ARGV[2])
for i = 3, #ARGV do
  redis.call('XADD', P .. ':events', 'MAXLEN', limit, '*', 'b', ARGV[i])
end
return #ARGV - 2
