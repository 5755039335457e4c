-- mutBorrow: grant the one mutable borrow of an owned object to the owner
-- presenting its token, unless the object is borrowed at all.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, ttl, seen, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- ARGV[1] key     the store key (for messages; must be the key of KEYS[1])
-- ARGV[2] owner   the owner's token
-- ARGV[3] token   the new borrow's token (a new random token per call)
-- ARGV[4] holder  id of the store instance that renews the borrow's lease
-- ARGV[5] ttlMs   lease length, in milliseconds (1 to 30 days)
--
-- Returns: the grant's number (1, 2, ...: the object's grant counter, see
--          includes/fence.lua; also for a resend of a call that already succeeded: the
--          object's mutable borrow is already this token, granted to this
--          holder; nothing changes)
-- Errors:  PSR_INVALID_OPTIONS    a malformed argument, or KEYS of several objects
--          PSR_REFERENCE_INVALID  `owner` is not the object's owner (moved,
--                                 dropped, lease expired)
--          PSR_MUTABLE_BORROW     the object is already borrowed (shared or mutable)
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
--@include fence

local key, err = keyArg('mutBorrow', KEYS[1], ARGV[1])
if not key then return err end
err = oneObject('mutBorrow', KEYS[1], { own = KEYS[2], lease = KEYS[3] })
if err then return err end
local owner, token, holder, ttl
owner, err = tokenArg('mutBorrow', 'owner', ARGV[2])
if not owner then return err end
token, err = tokenArg('mutBorrow', 'token', ARGV[3])
if not token then return err end
holder, err = tokenArg('mutBorrow', 'holder', ARGV[4])
if not holder then return err end
ttl, err = intArg('mutBorrow', 'ttlMs', ARGV[5], 1, 2592000000)
if not ttl then return err end

-- A resend of this very call (its reply was lost and the client sent it
-- again) finds its mutable borrow granted to its holder.
if rcall('HGET', KEYS[2], 'mut') == token and rcall('ZSCORE', KEYS[3], token)
    and rcall('HGET', KEYS[2], 'h:' .. token) == holder then
  return tonumber(rcall('HGET', KEYS[2], 'g:' .. token)) or 1
end
local now = nowMs()
purgeLeases(KEYS[1], KEYS[2], KEYS[3], now, recordTtl(KEYS[2], ttl))
err = ownerError(KEYS[1], KEYS[2], key, owner, KEYS[3])
if err then return err end
if token == owner or rcall('ZSCORE', KEYS[3], token) then
  return redis.error_reply('PSR_INVALID_OPTIONS mutBorrow: token ' .. token .. ' is already in use for key ' .. key .. ': every borrow needs a new token')
end
if rcall('HGET', KEYS[2], 'mut') ~= '' then
  return redis.error_reply('PSR_MUTABLE_BORROW key ' .. key ..
    ' is already mutably borrowed: release the RefMutProxy first')
end
local shared = rcall('ZCARD', KEYS[3]) - 1
if shared > 0 then
  return redis.error_reply('PSR_MUTABLE_BORROW key ' .. key .. ' has ' .. shared ..
    ' shared borrow(s): a mutable borrow must wait until they are released')
end

grantLease(KEYS[2], KEYS[3], token, holder, now, ttl)
rcall('HSET', KEYS[2], 'mut', token)
local grant = fenceGrant(KEYS[2], token)
settleObject(KEYS[1], KEYS[2], KEYS[3], now, recordTtl(KEYS[2], ttl))
return grant
