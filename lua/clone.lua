-- clone: copy an owned object on the server (COPY: no bytes through the
-- client) into a new key with its own owner. The new key shares the source's
-- hash tag, which COPY needs on Redis Cluster.
--
-- KEYS[1] data       the source's data key
-- KEYS[2] record     its ownership record (hash: owner, mut, h:<token> -> holder)
-- KEYS[3] leases     its handle leases (sorted set: token -> lease end, ms)
-- KEYS[4] newData    the clone's data key (same hash tag)
-- KEYS[5] newRecord  the clone's ownership record
-- KEYS[6] newLeases  the clone's handle leases
-- ARGV[1] key        the source's store key (for messages)
-- ARGV[2] owner      the source owner's token
-- ARGV[3] token      the clone owner's token
-- ARGV[4] holder     id of the store instance that renews the clone's lease
-- ARGV[5] ttlMs      lease length, in milliseconds
--
-- Returns: 1
-- Errors:  PSR_INVALID_OPTIONS    ttlMs is not a positive integer
--          PSR_REFERENCE_INVALID  `owner` is not the source's owner
--          PSR_MUTABLE_BORROW     the source is mutably borrowed (its value
--                                 may be changing under the copy)
--          PSR_ALREADY_OWNED      the clone's key is taken
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
  return redis.error_reply('PSR_INVALID_OPTIONS clone: ttlMs must be a positive integer, got ' .. tostring(ARGV[5]))
end
local now = nowMs()
purgeLeases(KEYS[2], KEYS[3], now)
local err = ownerError(KEYS[1], KEYS[2], key, ARGV[2])
if err then return err end
if rcall('HGET', KEYS[2], 'mut') ~= '' then
  return redis.error_reply('PSR_MUTABLE_BORROW key ' .. key ..
    ' is mutably borrowed: it cannot be cloned until the RefMutProxy is released')
end
if rcall('EXISTS', KEYS[4], KEYS[5]) > 0 then
  return redis.error_reply('PSR_ALREADY_OWNED the clone key of ' .. key .. ' already exists')
end

rcall('COPY', KEYS[1], KEYS[4])
rcall('HSET', KEYS[5], 'owner', ARGV[3], 'mut', '')
grantLease(KEYS[5], KEYS[6], ARGV[3], ARGV[4], now + ttl)
settleObject(KEYS[4], KEYS[5], KEYS[6])
return 1
