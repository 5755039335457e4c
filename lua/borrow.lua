-- borrow: grant a shared borrow of an owned object to the owner presenting
-- its token, unless the object is mutably borrowed.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- ARGV[1] key     the store key (for messages)
-- ARGV[2] owner   the owner's token
-- ARGV[3] token   the new borrow's token
-- ARGV[4] holder  id of the store instance that renews the borrow's lease
-- ARGV[5] ttlMs   lease length, in milliseconds
--
-- Returns: 1 (also for a resend of a call that already succeeded: same token)
-- Errors:  PSR_INVALID_OPTIONS    ttlMs is not a positive integer
--          PSR_REFERENCE_INVALID  `owner` is not the object's owner (moved,
--                                 dropped, lease expired)
--          PSR_MUTABLE_BORROW     the object is mutably borrowed
local rcall = redis.call
--@include nowMs
--@include leaseMs
--@include purgeLeases
--@include ownerError
--@include grantLease
--@include settleObject

local key = ARGV[1]
local ttl = leaseMs(ARGV[5])
if not ttl then
  return redis.error_reply('PSR_INVALID_OPTIONS borrow: ttlMs must be a positive integer, got ' .. tostring(ARGV[5]))
end
local now = nowMs()
purgeLeases(KEYS[2], KEYS[3], now)
local err = ownerError(KEYS[1], KEYS[2], key, ARGV[2])
if err then return err end
-- A resend of this very call (same random token; its reply was lost and
-- the client sent it again) finds its lease granted: renew it, count nothing twice.
if rcall('ZSCORE', KEYS[3], ARGV[3]) then
  grantLease(KEYS[2], KEYS[3], ARGV[3], ARGV[4], now + ttl)
  settleObject(KEYS[1], KEYS[2], KEYS[3])
  return 1
end
if rcall('HGET', KEYS[2], 'mut') ~= '' then
  return redis.error_reply('PSR_MUTABLE_BORROW key ' .. key ..
    ' is mutably borrowed: a shared borrow must wait until the RefMutProxy is released')
end

grantLease(KEYS[2], KEYS[3], ARGV[3], ARGV[4], now + ttl)
settleObject(KEYS[1], KEYS[2], KEYS[3])
return 1
