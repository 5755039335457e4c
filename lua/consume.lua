-- consume: read and delete an ephemeral object in one step, leaving a
-- tombstone that says who consumed it (for the next resolver's error message).
--
-- KEYS[1] data       the object's data key
-- KEYS[2] tombstone  the object's consume tombstone (same hash tag)
-- ARGV[1] consumer   JSON describing the consumer (pid, host, frame)
-- ARGV[2] ttlMs      how long the tombstone lives, in milliseconds
--
-- Returns: {1, value}                       the object, now deleted
--          {0, tombstone | nil, nowMs}      the object is missing; the tombstone
--                                           is "<consumedAtMs> <consumer JSON>"
-- Errors:  PSR_INVALID_OPTIONS  ttlMs is not a positive integer
local rcall = redis.call

local ttl = tonumber(ARGV[2])
if not ttl or ttl <= 0 or ttl ~= math.floor(ttl) then
  return redis.error_reply('PSR_INVALID_OPTIONS consume: ttlMs must be a positive integer, got ' .. tostring(ARGV[2]))
end

local t = rcall('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local value = rcall('GET', KEYS[1])
if value then
  rcall('UNLINK', KEYS[1])
  rcall('SET', KEYS[2], now .. ' ' .. ARGV[1], 'PX', ttl)
  return {1, value}
end
return {0, rcall('GET', KEYS[2]), now}
