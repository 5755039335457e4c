-- intoOwned: give an object that is already stored (a plain proxy's key) its
-- one owner. From now on its keys expire when the owner's lease ends.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- ARGV[1] key     the store key (for messages)
-- ARGV[2] token   the new owner's token
-- ARGV[3] holder  id of the store instance that renews the owner's lease
-- ARGV[4] ttlMs   lease length, in milliseconds
--
-- Returns: 1
-- Errors:  PSR_INVALID_OPTIONS            ttlMs is not a positive integer
--          PSR_PROXY_RESOLVE_MISSING_KEY  no object under the key
--          PSR_ALREADY_OWNED              the object already has an owner, or
--                                         its dropped owner still has borrows
local rcall = redis.call
--@include nowMs
--@include leaseMs
--@include purgeLeases
--@include grantLease
--@include settleObject

local key, token = ARGV[1], ARGV[2]
local ttl = leaseMs(ARGV[4])
if not ttl then
  return redis.error_reply('PSR_INVALID_OPTIONS intoOwned: ttlMs must be a positive integer, got ' .. tostring(ARGV[4]))
end
local now = nowMs()

if rcall('EXISTS', KEYS[2]) == 1 then
  purgeLeases(KEYS[2], KEYS[3], now)
  if settleObject(KEYS[1], KEYS[2], KEYS[3]) == 1 then
    local owner = rcall('HGET', KEYS[2], 'owner')
    if owner == '' then
      return redis.error_reply('PSR_ALREADY_OWNED key ' .. key ..
        ' lost its owner and is evicted when its last borrow ends: it cannot be owned again')
    end
    return redis.error_reply('PSR_ALREADY_OWNED key ' .. key ..
      ' already has an OwnedProxy: there is one owner per object (use clone() for a copy you own)')
  end
end
if rcall('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('PSR_PROXY_RESOLVE_MISSING_KEY key ' .. key ..
    ' is missing: it was evicted, expired, or never stored, so it cannot be owned')
end

rcall('HSET', KEYS[2], 'owner', token, 'mut', '')
grantLease(KEYS[2], KEYS[3], token, ARGV[3], now + ttl)
settleObject(KEYS[1], KEYS[2], KEYS[3])
return 1
