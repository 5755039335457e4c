-- clone: copy an owned object on the server (COPY: no bytes through the
-- client) into a new key with its own owner. The new key shares the source's
-- hash tag, which COPY needs on Redis Cluster.
--
-- KEYS[1] data       the source's data key
-- KEYS[2] record     its ownership record (hash: owner, mut, ttl, seen, h:<token> -> holder)
-- KEYS[3] leases     its handle leases (sorted set: token -> lease end, ms)
-- KEYS[4] newData    the clone's data key (same hash tag)
-- KEYS[5] newRecord  the clone's ownership record
-- KEYS[6] newLeases  the clone's handle leases
-- ARGV[1] key        the source's store key (for messages; must be the key of KEYS[1])
-- ARGV[2] owner      the source owner's token
-- ARGV[3] token      the clone owner's token (a new random token per call)
-- ARGV[4] holder     id of the store instance that renews the clone's lease
-- ARGV[5] ttlMs      lease length, in milliseconds (1 to 30 days)
--
-- Returns: 1 (also for a resend of a call that already succeeded: the
--          clone's owner is already this call's token; nothing changes)
-- Errors:  PSR_INVALID_OPTIONS    a malformed argument, KEYS of other objects,
--                                 or a clone key outside the source's hash tag
--          PSR_REFERENCE_INVALID  `owner` is not the source's owner
--          PSR_MUTABLE_BORROW     the source is mutably borrowed (its value
--                                 may be changing under the copy)
--          PSR_ALREADY_OWNED      the clone's key is taken
--          PSR_LIFETIME_ENDED     the object's lifetime ended its owner (lifetimeBound)
local rcall = redis.call
--@include keyArg
--@include oneObject
--@include tokenArg
--@include intArg
--@include nowMs
--@include recordTtl
--@include purgeLeases
--@include ownerError
--@include grantLease
--@include settleObject

local key, err = keyArg('clone', KEYS[1], ARGV[1])
if not key then return err end
err = oneObject('clone', KEYS[1], { own = KEYS[2], lease = KEYS[3] })
if err then return err end
err = oneObject('clone', KEYS[4], { own = KEYS[5], lease = KEYS[6] })
if err then return err end
local tag = string.match(KEYS[1], '^([^{}]+:{[^{}]+}:)')
if string.sub(KEYS[4], 1, #tag) ~= tag or KEYS[4] == KEYS[1] then
  return redis.error_reply('PSR_INVALID_OPTIONS clone: the clone\'s keys must be another object under the source\'s hash tag ' ..
    shown(tag) .. ', got ' .. shown(KEYS[4]))
end
local owner, token, holder, ttl
owner, err = tokenArg('clone', 'owner', ARGV[2])
if not owner then return err end
token, err = tokenArg('clone', 'token', ARGV[3])
if not token then return err end
holder, err = tokenArg('clone', 'holder', ARGV[4])
if not holder then return err end
ttl, err = intArg('clone', 'ttlMs', ARGV[5], 1, 2592000000)
if not ttl then return err end

if rcall('HGET', KEYS[5], 'owner') == token then return 1 end
local now = nowMs()
purgeLeases(KEYS[1], KEYS[2], KEYS[3], now, recordTtl(KEYS[2], ttl))
err = ownerError(KEYS[1], KEYS[2], key, owner, KEYS[3])
if err then return err end
if rcall('HGET', KEYS[2], 'mut') ~= '' then
  return redis.error_reply('PSR_MUTABLE_BORROW key ' .. key ..
    ' is mutably borrowed: it cannot be cloned until the RefMutProxy is released')
end
if rcall('EXISTS', KEYS[4], KEYS[5], KEYS[6]) > 0 then
  return redis.error_reply('PSR_ALREADY_OWNED the clone key of ' .. key .. ' already exists')
end

rcall('COPY', KEYS[1], KEYS[4])
rcall('HSET', KEYS[5], 'owner', token, 'mut', '', 'ttl', ttl)
grantLease(KEYS[5], KEYS[6], token, holder, now, ttl)
settleObject(KEYS[4], KEYS[5], KEYS[6], now, ttl)
return 1
