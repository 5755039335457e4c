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
-- Errors:  PSR_INVALID_OPTIONS  not exactly 3 KEYS and 4 ARGV (the generated guard),
--                               a ttl that is not a positive integer of at most
--                               15 digits, or a token that is empty or has a space
--          PSR_SERIALIZATION    the data, tombstone or grace key holds something
--                               that is not a string (not written by proxystore-redis)
local rcall = redis.call

-- Error replies are one line: show arguments without control characters.
local function shown(s)
  return (string.gsub(string.sub(s, 1, 200), '%c', '?'))
end

-- Digits only, so SET/PEXPIRE get exactly what was checked ('1e3', 'inf' and
-- '0x10' pass tonumber); 15 digits stay an exact integer and far from
-- Redis's expire-time overflow.
local function milliseconds(name, v)
  if not string.match(v, '^[1-9]%d*$') then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS consume: ' .. name .. ' must be a positive integer, got ' .. shown(v))
  end
  if #v > 15 then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS consume: ' .. name .. ' must be at most 15 digits, got ' .. shown(v))
  end
  return v
end
local ttl, err1 = milliseconds('ttlMs', ARGV[3])
if not ttl then return err1 end
local grace, err2 = milliseconds('graceMs', ARGV[4])
if not grace then return err2 end
local token = ARGV[1]
if token == '' or string.find(token, ' ', 1, true) then
  return redis.error_reply('PSR_INVALID_OPTIONS consume: token must be a non-empty string without spaces')
end

-- A key of another type makes GET fail; pcall turns that into a coded error
-- instead of Redis's "script: <sha>, on @user_script:<line>" message.
local function getString(key)
  local value = redis.pcall('GET', key)
  if type(value) == 'table' and value.err then
    return nil, redis.error_reply('PSR_SERIALIZATION consume: Redis key ' .. shown(key)
      .. ' holds a value of another Redis type, not bytes written by proxystore-redis')
  end
  return value
end

local t = rcall('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local value, err = getString(KEYS[1])
if err then return err end
if value then
  rcall('RENAME', KEYS[1], KEYS[3])
  rcall('PEXPIRE', KEYS[3], grace)
  rcall('SET', KEYS[2], now .. ' ' .. token .. ' ' .. ARGV[2], 'PX', ttl)
  return {1, value}
end

local tomb, err3 = getString(KEYS[2])
if err3 then return err3 end
if tomb then
  -- A resend of a consume that already ran: same token, value still in grace.
  local _, _, tombToken = string.find(tomb, '^%d+ (%S+) ')
  if tombToken == token then
    local kept, err4 = getString(KEYS[3])
    if err4 then return err4 end
    if kept then return {1, kept} end
  end
end
return {0, tomb, now}
