-- consume: read and delete an ephemeral object in one step, leaving a
-- tombstone that says who consumed it (for the next resolver's error message).
--
-- The object is not freed at once: it is renamed to a short-lived grace key,
-- so that when a consume ran but its reply was lost (connection killed,
-- Redis restarted from its AOF) the client's automatic resend of the same
-- command, with the same consumer token, gets the value instead of losing it.
--
-- KEYS[1] data       the object's data key
-- KEYS[2] tombstone  the object's consume tombstone (same hash tag)
-- KEYS[3] grace      where the consumed bytes wait for a resend (same hash tag)
-- ARGV[1] token      random token of this consume call
-- ARGV[2] consumer   JSON describing the consumer (pid, host, frame)
-- ARGV[3] ttlMs      how long the tombstone lives, in milliseconds
-- ARGV[4] graceMs    how long the grace copy lives, in milliseconds
--
-- Returns: {1, value}                       the object, now consumed
--          {0, tombstone | nil, nowMs}      the object is missing; the tombstone
--                                           is "<consumedAtMs> <token> <consumer JSON>"
-- Errors:  PSR_INVALID_OPTIONS  a missing token or a ttl that is not a positive integer
local rcall = redis.call

local function positive(name, v)
  local n = tonumber(v)
  if not n or n <= 0 or n ~= math.floor(n) then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS consume: ' .. name .. ' must be a positive integer, got ' .. tostring(v))
  end
  return n
end
local ttl, err1 = positive('ttlMs', ARGV[3])
if not ttl then return err1 end
local grace, err2 = positive('graceMs', ARGV[4])
if not grace then return err2 end
local token = ARGV[1]
if type(token) ~= 'string' or token == '' or string.find(token, ' ', 1, true) then
  return redis.error_reply('PSR_INVALID_OPTIONS consume: token must be a non-empty string without spaces')
end

local t = rcall('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local value = rcall('GET', KEYS[1])
if value then
  rcall('RENAME', KEYS[1], KEYS[3])
  rcall('PEXPIRE', KEYS[3], grace)
  rcall('SET', KEYS[2], now .. ' ' .. token .. ' ' .. ARGV[2], 'PX', ttl)
  return {1, value}
end

local tomb = rcall('GET', KEYS[2])
if tomb then
  -- A resend of a consume that already ran: same token, value still in grace.
  local _, _, tombToken = string.find(tomb, '^%d+ (%S+) ')
  if tombToken == token then
    local kept = rcall('GET', KEYS[3])
    if kept then return {1, kept} end
  end
end
return {0, tomb, now}
