-- abandon: the owner's end of life when it cannot throw (a collected
-- OwnedProxy, a closing store): evict the object now if it is not borrowed,
-- otherwise give up ownership so the object is evicted when its last borrow
-- ends.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- ARGV[1] owner   the owner's token
--
-- Returns: 0  `owner` is not the owner (any more): nothing done
--          1  evicted
--          2  orphaned: evicted when the last borrow ends (or its lease does)
-- Errors:  none (a finalizer and a closing store cannot handle one)
local rcall = redis.call
--@include nowMs
--@include purgeLeases
--@include settleObject

local token = ARGV[1]
purgeLeases(KEYS[2], KEYS[3], nowMs())
if rcall('HGET', KEYS[2], 'owner') ~= token then return 0 end

rcall('ZREM', KEYS[3], token)
rcall('HDEL', KEYS[2], 'h:' .. token)
rcall('HSET', KEYS[2], 'owner', '')
if settleObject(KEYS[1], KEYS[2], KEYS[3]) == 0 then return 1 end
return 2
