-- borrow: grant a shared borrow of an owned object to the owner presenting
-- its token, unless the object is mutably borrowed.
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
--          borrow's token is already granted to this holder; nothing changes)
-- Errors:  PSR_INVALID_OPTIONS    a malformed argument, or KEYS of several objects
--          PSR_REFERENCE_INVALID  `owner` is not the object's owner (moved,
--                                 dropped, lease expired)
--          PSR_MUTABLE_BORROW     the object is mutably borrowed
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

local key, err = keyArg('borrow', KEYS[1], ARGV[1])
if not key then return err end
err = oneObject('borrow', KEYS[1], { own = KEYS[2], lease = KEYS[3] })
if err then return err end
local owner, token, holder, ttl
owner, err = tokenArg('borrow', 'owner', ARGV[2])
if not owner then return err end
token, err = tokenArg('borrow', 'token', ARGV[3])
if not token then return err end
holder, err = tokenArg('borrow', 'holder', ARGV[4])
if not holder then return err end
ttl, err = intArg('borrow', 'ttlMs', ARGV[5], 1, 2592000000)
if not ttl then return err end

-- A resend of this very call (its reply was lost and the client sent it
-- again) finds its borrow granted to its holder.
local leased = token ~= owner and rcall('ZSCORE', KEYS[3], token)
if leased and rcall('HGET', KEYS[2], 'h:' .. token) == holder
    and rcall('HGET', KEYS[2], 'mut') ~= token then
  return tonumber(rcall('HGET', KEYS[2], 'g:' .. token)) or 1
end
local now = nowMs()
-- One read of the record for the usual case: no lease lapsed, no lifetime
-- bound passed or ended, the caller owns a live object. Then purgeLeases
-- and ownerError would change and refuse nothing, and their separate reads
-- (and grantLease's) are skipped; anything else takes the general path.
local f = rcall('HMGET', KEYS[2], 'ttl', 'until', 'ended', 'owner', 'mut')
-- The record's lease length: purgeLeases leaves it as it is, and the grant
-- only raises it to `ttl` (what settleObject gets below).
local recorded = recordTtlValue(f[1], ttl)
local bound = tonumber(f[2])
local usual = not f[3] and not (bound and now >= bound) and f[4] == owner
  and #rcall('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1) == 0 and rcall('EXISTS', KEYS[1]) == 1
local mut = f[5]
if not usual then
  purgeLeases(KEYS[1], KEYS[2], KEYS[3], now, recorded)
  err = ownerError(KEYS[1], KEYS[2], key, owner, KEYS[3])
  if err then return err end
  mut = rcall('HGET', KEYS[2], 'mut')
end
-- (A token without a lease before the purge has none after it: the purge only removes.)
if token == owner or (leased and rcall('ZSCORE', KEYS[3], token)) then
  return redis.error_reply('PSR_INVALID_OPTIONS borrow: token ' .. token .. ' is already in use for key ' .. key .. ': every borrow needs a new token')
end
if mut ~= '' then
  return redis.error_reply('PSR_MUTABLE_BORROW key ' .. key ..
    ' is mutably borrowed: a shared borrow must wait until the RefMutProxy is released')
end

local grant
if usual then
  -- grantLease and fenceGrant in three calls: the same lease, holder, grant number and record ttl.
  rcall('ZADD', KEYS[3], now + ttl, token)
  grant = rcall('HINCRBY', KEYS[2], 'grants', 1)
  if recordTtlValue(f[1], 0) < ttl then
    rcall('HSET', KEYS[2], 'h:' .. token, holder, 'g:' .. token, grant, 'ttl', ttl)
  else
    rcall('HSET', KEYS[2], 'h:' .. token, holder, 'g:' .. token, grant)
  end
else
  grantLease(KEYS[2], KEYS[3], token, holder, now, ttl)
  grant = fenceGrant(KEYS[2], token)
end
settleObject(KEYS[1], KEYS[2], KEYS[3], now, math.max(recorded, ttl))
return grant
