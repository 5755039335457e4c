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
-- Errors:  PSR_INVALID_OPTIONS  not exactly 2 KEYS and 2 ARGV (the generated guard),
--                               or ttlMs is not a positive integer of at most 15 digits
--          PSR_SERIALIZATION    the data or tombstone key holds something that
--                               is not a string (not written by proxystore-redis)
local rcall = redis.call

-- Error replies are one line: show arguments without control characters.
local function shown(s)
  return (string.gsub(string.sub(s, 1, 200), '%c', '?'))
end

-- Digits only, so SET gets exactly what was checked ('1e3', 'inf' and
-- '0x10' pass tonumber); 15 digits stay an exact integer and far from
-- Redis's expire-time overflow.
local ttl = ARGV[2]
if not string.match(ttl, '^[1-9]%d*$') then
  return redis.error_reply('PSR_INVALID_OPTIONS consume: ttlMs must be a positive integer, got ' .. shown(ttl))
end
if #ttl > 15 then
  return redis.error_reply('PSR_INVALID_OPTIONS consume: ttlMs must be at most 15 digits, got ' .. shown(ttl))
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
  rcall('UNLINK', KEYS[1])
  rcall('SET', KEYS[2], now .. ' ' .. ARGV[1], 'PX', ttl)
  return {1, value}
end
local tombstone
tombstone, err = getString(KEYS[2])
if err then return err end
return {0, tombstone, now}
