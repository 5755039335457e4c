-- ownedCreate: store a new object together with its ownership record, so it
-- never exists without an owner (store.ownedProxy).
--
-- KEYS[1] data    the new object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- ARGV[1] key     the store key (for messages)
-- ARGV[2] bytes   the serialized object
-- ARGV[3] token   the owner's token
-- ARGV[4] holder  id of the store instance that renews the owner's lease
-- ARGV[5] ttlMs   lease length, in milliseconds
--
-- Returns: 1
-- Errors:  PSR_INVALID_OPTIONS  ttlMs is not a positive integer
--          PSR_ALREADY_OWNED    the key already holds an object or a record
local rcall = redis.call
--@include nowMs
--@include leaseMs
--@include grantLease
--@include settleObject

local key, token = ARGV[1], ARGV[3]
local ttl = leaseMs(ARGV[5])
if not ttl then
  return redis.error_reply('PSR_INVALID_OPTIONS ownedCreate: ttlMs must be a positive integer, got ' .. tostring(ARGV[5]))
end
if rcall('EXISTS', KEYS[1], KEYS[2]) > 0 then
  return redis.error_reply('PSR_ALREADY_OWNED key ' .. key .. ' already exists')
end

rcall('SET', KEYS[1], ARGV[2])
rcall('HSET', KEYS[2], 'owner', token, 'mut', '')
grantLease(KEYS[2], KEYS[3], token, ARGV[4], nowMs() + ttl)
settleObject(KEYS[1], KEYS[2], KEYS[3])
return 1
