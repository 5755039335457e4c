-- drop: the owner ends the object (evicts it), unless it is borrowed.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, ttl, seen, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- KEYS[4] done    its recently finished calls (sorted set: '<call>:<outcome>' -> forget at, ms)
-- ARGV[1] key     the store key (for messages; must be the key of KEYS[1])
-- ARGV[2] owner   the owner's token
-- ARGV[3] call    this call's own random token (recognises its resend)
--
-- Returns: 1 (also for a resend of a call that already succeeded: found in
--          `done`; nothing changes)
-- Errors:  PSR_INVALID_OPTIONS    a malformed argument, or KEYS of several objects
--          PSR_REFERENCE_INVALID  `owner` is not the object's owner (moved,
--                                 dropped, lease expired)
--          PSR_BORROWED           the object has live borrows
--          PSR_LIFETIME_ENDED     the object's lifetime ended its owner (lifetimeBound)
local rcall = redis.call
--@include keyArg
--@include oneObject
--@include tokenArg
--@include nowMs
--@include recordTtl
--@include purgeLeases
--@include ownerError
--@include finishedCall
--@include markFinished

local key, err = keyArg('drop', KEYS[1], ARGV[1])
if not key then return err end
err = oneObject('drop', KEYS[1], { own = KEYS[2], lease = KEYS[3], done = KEYS[4] })
if err then return err end
local owner, callToken
owner, err = tokenArg('drop', 'owner', ARGV[2])
if not owner then return err end
callToken, err = tokenArg('drop', 'call', ARGV[3])
if not callToken then return err end

local call = 'drop:' .. callToken
if finishedCall(KEYS[4], call, { 1 }) then return 1 end
local now = nowMs()
local ttl = recordTtl(KEYS[2], 30000)
purgeLeases(KEYS[1], KEYS[2], KEYS[3], now, ttl)
err = ownerError(KEYS[1], KEYS[2], key, owner, KEYS[3])
if err then return err end
local borrows = rcall('ZCARD', KEYS[3]) - 1
if borrows > 0 then
  local mutable = rcall('HGET', KEYS[2], 'mut') ~= '' and 1 or 0
  return redis.error_reply('PSR_BORROWED the OwnedProxy of key ' .. key .. ' cannot be dropped while borrowed (' ..
    (borrows - mutable) .. ' RefProxy, ' .. mutable .. ' RefMutProxy): release the borrows first')
end

rcall('DEL', KEYS[1], KEYS[2], KEYS[3])
markFinished(KEYS[4], call, 1, now, ttl)
return 1
