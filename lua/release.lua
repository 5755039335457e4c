-- release: end a borrow (shared or mutable), by whoever holds its token, in
-- any process. When it was the last borrow of an object whose owner is gone,
-- the object is evicted.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- ARGV[1] key     the store key (for messages)
-- ARGV[2] token   the borrow's token
--
-- Returns: 1  released
--          2  released, and the ownerless object was evicted
-- Errors:  PSR_REFERENCE_INVALID  no live borrow has this token (already
--                                 released, lease expired, object gone)
local rcall = redis.call
--@include nowMs
--@include purgeLeases
--@include settleObject

local key, token = ARGV[1], ARGV[2]
purgeLeases(KEYS[2], KEYS[3], nowMs())
if not rcall('ZSCORE', KEYS[3], token) or rcall('HGET', KEYS[2], 'owner') == token then
  return redis.error_reply('PSR_REFERENCE_INVALID the borrow of key ' .. key ..
    ' is invalid: it was already released, its lease expired, or the object is gone')
end

rcall('ZREM', KEYS[3], token)
rcall('HDEL', KEYS[2], 'h:' .. token)
if rcall('HGET', KEYS[2], 'mut') == token then rcall('HSET', KEYS[2], 'mut', '') end
if settleObject(KEYS[1], KEYS[2], KEYS[3]) == 0 then return 2 end
return 1
