-- objectPut: write a new object that has a rules record (reads: n with n >= 2)
-- and belongs to no lifetime: its bytes and its budget of consuming reads
-- together, or not at all, so no consumer ever sees the one without the
-- other. With a ttl both keys expire at the same moment. (A plain put, with
-- or without a ttl, is one SET; a put under a lifetime is lifetimePut.)
--
-- A resend of the same call (after a lost reply) finds the object its first
-- run wrote and changes nothing (its ttl is not counted again from the
-- resend): nobody can have read the object in between, since its key is
-- random and only the reply hands it out.
--
-- KEYS[1] data   the new object's data key, <ns>:{<tag>}:d:<key>
-- KEYS[2] rules  its rules record, <ns>:{<tag>}:rules:<key>
-- KEYS[3] stage  KEYS[1] itself for a value sent in ARGV[1]; for a chunked
--                value, the staging hash its chunks were written to,
--                <ns>:{<tag>}:stage:<key>:<write id> (includes/writeData.lua)
-- ARGV[1] value  the object's bytes, or a chunked value's manifest
-- ARGV[2] reads  how many consuming reads it allows (2 to 1000000000)
-- ARGV[3] ttlMs  milliseconds until both keys expire (1 to 9999999999999),
--                or 0 for no expiry
--
-- Returns: 1
-- Errors:  PSR_INVALID_OPTIONS  KEYS that are not one object's data and rules
--                               keys; bad reads or ttlMs; a malformed manifest
--          PSR_REDIS_OPERATION  a chunked value's staging hash is gone
--                               (expired) or incomplete: nothing was written
local rcall = redis.call
--@include intArg
--@include oneObject
--@include writeData

local err = oneObject('objectPut', KEYS[1], { rules = KEYS[2] })
if err then return err end
local reads, err2 = intArg('objectPut', 'reads', ARGV[2], 2, 1000000000)
if not reads then return err2 end
local ttl, err3 = intArg('objectPut', 'ttlMs', ARGV[3], 0, 9999999999999)
if not ttl then return err3 end

-- This very call, sent again: its first run wrote the object.
local existing = rcall('EXISTS', KEYS[1], KEYS[2])
if existing == 2 then return 1 end
local state, err4 = stagedData('objectPut', KEYS[1], KEYS[3], ARGV[1])
if not state then return err4 end
if ttl > 0 then
  -- (ARGV[3]: ttlMs as intArg checked it, passed on as text: no number formatting.)
  writeData(KEYS[1], KEYS[3], ARGV[1], state, 'px', ARGV[3])
else
  -- A fresh key has no TTL (nor keeps one it had: SET without KEEPTTL would drop it).
  writeData(KEYS[1], KEYS[3], ARGV[1], state, 'keep', 0)
end
-- (A rules record without its data, left by an earlier run whose data went: dropped.)
if existing > 0 then rcall('DEL', KEYS[2]) end
rcall('HSET', KEYS[2], 'reads', ARGV[2], 'of', ARGV[2])
-- The rules record expires with the data, always. (Neither key existed and
-- no ttl: the data has no expiry, nothing to ask.)
if ttl > 0 or existing > 0 then
  local at = rcall('PEXPIRETIME', KEYS[1])
  if at > 0 then rcall('PEXPIREAT', KEYS[2], at) end
end
return 1
