-- Shared head of every conveyor Lua script (loaded before the package's _prelude.lua).
-- P is the key prefix (KEYS[1]). NOW is ARGV[1], "now" in seconds from the caller's injected
-- clock, or "" to use the server's TIME, so that in production the Redis server's clock is the
-- only clock.

local P = KEYS[1]
local function clock(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local NOW = clock(ARGV[1])
