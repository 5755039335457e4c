-- renew: extend one handle's lease (the heartbeat of the process holding it
-- sends one call per handle, pipelined). A handle that moved away (toRef) is
-- renewed by its sender only until a receiver claims it.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, ttl, seen, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- ARGV[1] token   the handle's token
-- ARGV[2] holder  id of the renewing store instance
-- ARGV[3] ttlMs   lease length, in milliseconds (1 to 30 days)
-- ARGV[4] mode    'hold': this holder has the handle (and claims it);
--                 'transit': it sent the handle and renews it until claimed
--
-- Returns: 1  renewed
--          0  the handle is gone (released, dropped, lease expired)
--          2  (transit) another holder claimed it: stop renewing
--          3  the handle was the owner, and the object's lifetime ended it
--             (lifetimeBound): stop renewing
--          (a resend renews again: the lease then ends ttlMs after the
--          resend, as if the heartbeat had run then; nothing else changes)
-- Errors:  PSR_INVALID_OPTIONS  a malformed argument, or KEYS of several objects
local rcall = redis.call
--@include oneObject
--@include tokenArg
--@include intArg
--@include nowMs
--@include recordTtl
--@include purgeLeases
--@include settleObject

local err = oneObject('renew', KEYS[1], { own = KEYS[2], lease = KEYS[3] })
if err then return err end
local token, holder, ttl
token, err = tokenArg('renew', 'token', ARGV[1])
if not token then return err end
holder, err = tokenArg('renew', 'holder', ARGV[2])
if not holder then return err end
ttl, err = intArg('renew', 'ttlMs', ARGV[3], 1, 2592000000)
if not ttl then return err end
local mode = ARGV[4]
if mode ~= 'hold' and mode ~= 'transit' then
  return redis.error_reply('PSR_INVALID_OPTIONS renew: mode must be hold or transit, got ' .. shown(mode))
end

local now = nowMs()
purgeLeases(KEYS[1], KEYS[2], KEYS[3], now, recordTtl(KEYS[2], ttl))
if not rcall('ZSCORE', KEYS[3], token) then
  if rcall('HGET', KEYS[2], 'endedOwner') == token then return 3 end
  return 0
end
if mode == 'transit' and rcall('HGET', KEYS[2], 'h:' .. token) ~= holder then return 2 end

rcall('ZADD', KEYS[3], 'XX', 'GT', now + ttl, token)
if mode == 'hold' then rcall('HSET', KEYS[2], 'h:' .. token, holder) end
if recordTtl(KEYS[2], 0) < ttl then rcall('HSET', KEYS[2], 'ttl', ttl) end
settleObject(KEYS[1], KEYS[2], KEYS[3], now, recordTtl(KEYS[2], ttl))
return 1
