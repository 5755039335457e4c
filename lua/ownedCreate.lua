-- ownedCreate: store a new object together with its ownership record, so it
-- never exists without an owner (store.ownedProxy).
--
-- KEYS[1] data    the new object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, ttl, seen, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- KEYS[4] stage   KEYS[1] itself for bytes sent in ARGV[2]; for a chunked
--                 value, the staging hash its chunks were written to,
--                 <ns>:{<tag>}:stage:<key>:<write id> (includes/writeData.lua)
-- ARGV[1] key     the store key (for messages; must be the key of KEYS[1])
-- ARGV[2] bytes   the serialized object, or a chunked value's manifest
-- ARGV[3] token   the owner's token (a new random token per call)
-- ARGV[4] holder  id of the store instance that renews the owner's lease
-- ARGV[5] ttlMs   lease length, in milliseconds (1 to 30 days)
--
-- Returns: 1 (also for a resend of a call that already succeeded: the
--          object's owner is already this call's token; nothing changes)
-- Errors:  PSR_INVALID_OPTIONS  a malformed argument, or KEYS of several objects
--          PSR_ALREADY_OWNED    the key already holds an object or a record
--          PSR_REDIS_OPERATION  a chunked value's staging hash is gone (expired)
local rcall = redis.call
--@include keyArg
--@include oneObject
--@include tokenArg
--@include intArg
--@include nowMs
--@include grantLease
--@include settleObject
--@include writeData

local key, err = keyArg('ownedCreate', KEYS[1], ARGV[1])
if not key then return err end
err = oneObject('ownedCreate', KEYS[1], { own = KEYS[2], lease = KEYS[3] })
if err then return err end
local token, holder, ttl
token, err = tokenArg('ownedCreate', 'token', ARGV[3])
if not token then return err end
holder, err = tokenArg('ownedCreate', 'holder', ARGV[4])
if not holder then return err end
ttl, err = intArg('ownedCreate', 'ttlMs', ARGV[5], 1, 2592000000)
if not ttl then return err end

if rcall('HGET', KEYS[2], 'owner') == token then return 1 end
if rcall('EXISTS', KEYS[1], KEYS[2]) > 0 then
  return redis.error_reply('PSR_ALREADY_OWNED key ' .. key .. ' already exists: ownedProxy always makes a new key, so this is a key collision or a call by hand')
end

local state
state, err = stagedData('ownedCreate', KEYS[1], KEYS[4], ARGV[2])
if not state then return err end
local now = nowMs()
writeData(KEYS[1], KEYS[4], ARGV[2], state, 'none', 0)
rcall('HSET', KEYS[2], 'owner', token, 'mut', '', 'ttl', ttl)
grantLease(KEYS[2], KEYS[3], token, holder, now, ttl)
settleObject(KEYS[1], KEYS[2], KEYS[3], now, ttl)
return 1
