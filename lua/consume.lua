-- consume: read and delete an ephemeral object in one step, leaving a
-- tombstone that says who consumed it (for the next resolver's error message).
--
-- The object is not freed at once: it is renamed to a short-lived grace key
-- whose name ends with the consumer's token, so that a consume that ran but
-- whose reply was lost (connection killed, Redis restarted from its AOF)
-- gets the value again when it is sent again with the same token: ioredis's
-- automatic resend, or the application resolving the same proxy again (the
-- token belongs to the proxy object, see src/proxy/proxy.ts). The grace copy
-- is found by its own name, so it does not depend on the tombstone, which may
-- live shorter (tombstoneTtl). Any other token finds nothing there.
--
-- KEYS[1] data       the object's data key, <ns>:{<tag>}:d:<key>
-- KEYS[2] tombstone  the object's consume tombstone, <ns>:{<tag>}:tomb:<key>
-- KEYS[3] grace      where the consumed bytes wait for this token's resend,
--                    <ns>:{<tag>}:grace:<key>:<token>
-- ARGV[1] token      the consumer's token (16 to 64 characters A-Z a-z 0-9 _ -)
-- ARGV[2] consumer   JSON describing the consumer (pid, host, frame), at most 4096 bytes
-- ARGV[3] ttlMs      how long the tombstone lives, in milliseconds
-- ARGV[4] graceMs    how long the grace copy lives, in milliseconds
--
-- Returns: {1, value}                       the object, consumed by this token
--                                           (now, or by an earlier call with it)
--          {0, tombstone | nil, nowMs}      the object is missing; the tombstone
--                                           is "<consumedAtMs> <token> <consumer JSON>"
-- Errors:  PSR_INVALID_OPTIONS  not exactly 3 KEYS and 4 ARGV (the generated guard),
--                               KEYS that are not this object's keys for this
--                               token, a ttl that is not an integer from 1 to
--                               9999999999999, a malformed token or consumer
--          PSR_SERIALIZATION    the data, tombstone or grace key holds something
--                               that is not a string (not written by proxystore-redis)
local rcall = redis.call
--@include nowMs
--@include intArg
--@include tokenArg
--@include objectKey

local token, err = tokenArg('consume', 'token', ARGV[1])
if not token then return err end
local ttl, err1 = intArg('consume', 'ttlMs', ARGV[3], 1, 9999999999999)
if not ttl then return err1 end
local grace, err2 = intArg('consume', 'graceMs', ARGV[4], 1, 9999999999999)
if not grace then return err2 end
if #ARGV[2] > 4096 then
  return redis.error_reply('PSR_INVALID_OPTIONS consume: consumer must be at most 4096 bytes, got ' .. #ARGV[2])
end
local tomb = objectKey(KEYS[1], 'tomb')
if not tomb or KEYS[2] ~= tomb or KEYS[3] ~= objectKey(KEYS[1], 'grace') .. ':' .. token then
  return redis.error_reply('PSR_INVALID_OPTIONS consume: KEYS ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[2]) .. ' and ' ..
    shown(KEYS[3]) .. ' are not the data, tombstone and grace keys of one object for this token')
end

-- A key of another type makes GET fail; pcall turns that into a coded error
-- instead of Redis's "script: <sha>, on @user_script:<line>" message. Any
-- other error (an ACL refusal, ...) is passed on as it is.
local function getString(key)
  local value = redis.pcall('GET', key)
  if type(value) == 'table' and value.err then
    if not string.find(value.err, 'WRONGTYPE', 1, true) then return nil, value end
    return nil, redis.error_reply('PSR_SERIALIZATION consume: Redis key ' .. shown(key)
      .. ' holds a value of another Redis type, not bytes written by proxystore-redis')
  end
  return value
end

local now = nowMs()
local value, err3 = getString(KEYS[1])
if err3 then return err3 end
if value then
  rcall('RENAME', KEYS[1], KEYS[3])
  rcall('PEXPIRE', KEYS[3], grace)
  rcall('SET', KEYS[2], now .. ' ' .. token .. ' ' .. ARGV[2], 'PX', ttl)
  return {1, value}
end

-- This token consumed the object before (its reply was lost): same value.
local kept, err4 = getString(KEYS[3])
if err4 then return err4 end
if kept then return {1, kept} end

local tombstone, err5 = getString(KEYS[2])
if err5 then return err5 end
return {0, tombstone, now}
