-- abandon: the owner's end of life when it cannot throw (a collected
-- OwnedProxy, a closing store): evict the object now if it is not borrowed,
-- otherwise give up ownership so the object is evicted when its last borrow
-- ends.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, ttl, seen, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- KEYS[4] done    its recently finished calls (sorted set: '<call>:<outcome>' -> forget at, ms)
-- ARGV[1] owner   the owner's token
-- ARGV[2] call    this call's own random token (recognises its resend)
--
-- Returns: 0  `owner` is not the owner (any more): nothing done
--          1  evicted
--          2  orphaned: evicted when the last borrow ends (or its lease does)
--          (a resend of a call that already evicted or orphaned returns its
--          first outcome, found in `done`, and changes nothing)
-- Errors:  PSR_INVALID_OPTIONS  a malformed argument, or KEYS of several
--                               objects (no other: a finalizer and a closing
--                               store cannot handle one)
local rcall = redis.call
--@include oneObject
--@include tokenArg
--@include nowMs
--@include recordTtl
--@include purgeLeases
--@include settleObject
--@include finishedCall
--@include markFinished

local err = oneObject('abandon', KEYS[1], { own = KEYS[2], lease = KEYS[3], done = KEYS[4] })
if err then return err end
local owner, callToken
owner, err = tokenArg('abandon', 'owner', ARGV[1])
if not owner then return err end
callToken, err = tokenArg('abandon', 'call', ARGV[2])
if not callToken then return err end

local call = 'abandon:' .. callToken
local before = finishedCall(KEYS[4], call, { 1, 2 })
if before then return before end
local now = nowMs()
local ttl = recordTtl(KEYS[2], 30000)
purgeLeases(KEYS[1], KEYS[2], KEYS[3], now, ttl)
if rcall('HGET', KEYS[2], 'owner') ~= owner then return 0 end

rcall('ZREM', KEYS[3], owner)
rcall('HDEL', KEYS[2], 'h:' .. owner)
rcall('HSET', KEYS[2], 'owner', '')
local outcome = 2
if settleObject(KEYS[1], KEYS[2], KEYS[3], now, ttl) == 0 then outcome = 1 end
markFinished(KEYS[4], call, outcome, now, ttl)
return outcome
