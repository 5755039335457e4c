-- renew: extend one handle's lease (the heartbeat of the process holding it
-- sends one call per handle, pipelined). A handle that moved away (toRef) is
-- renewed by its sender only until a receiver claims it.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- ARGV[1] token   the handle's token
-- ARGV[2] holder  id of the renewing store instance
-- ARGV[3] ttlMs   lease length, in milliseconds
-- ARGV[4] mode    'hold': this holder has the handle (and claims it);
--                 'transit': it sent the handle and renews it until claimed
--
-- Returns: 1  renewed
--          0  the handle is gone (released, dropped, lease expired)
--          2  (transit) another holder claimed it: stop renewing
-- Errors:  PSR_INVALID_OPTIONS  ttlMs or mode is malformed
local rcall = redis.call
--@include nowMs
--@include leaseMs
--@include purgeLeases
--@include settleObject

local token, holder, mode = ARGV[1], ARGV[2], ARGV[4]
local ttl = leaseMs(ARGV[3])
if not ttl or (mode ~= 'hold' and mode ~= 'transit') then
  return redis.error_reply('PSR_INVALID_OPTIONS renew: bad ttlMs ' .. tostring(ARGV[3]) .. ' or mode ' .. tostring(mode))
end
local now = nowMs()
purgeLeases(KEYS[2], KEYS[3], now)
if not rcall('ZSCORE', KEYS[3], token) then return 0 end
if mode == 'transit' and rcall('HGET', KEYS[2], 'h:' .. token) ~= holder then return 2 end

rcall('ZADD', KEYS[3], 'XX', 'GT', now + ttl, token)
if mode == 'hold' then rcall('HSET', KEYS[2], 'h:' .. token, holder) end
settleObject(KEYS[1], KEYS[2], KEYS[3])
return 1
