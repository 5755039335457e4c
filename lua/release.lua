-- release: end a borrow (shared or mutable), by whoever holds its token, in
-- any process. When it was the last borrow of an object whose owner is gone,
-- the object is evicted.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, ttl, seen, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- KEYS[4] done    its recently finished calls (sorted set: '<call>:<outcome>' -> forget at, ms)
-- ARGV[1] key     the store key (for messages; must be the key of KEYS[1])
-- ARGV[2] token   the borrow's token
-- ARGV[3] call    this call's own random token (recognises its resend; a
--                 second release of the token is another call, and fails)
-- ARGV[4] grant   the borrow's grant number (includes/fence.lua); '' or '0'
--                 presents none (refs of older versions)
--
-- Returns: 1  released
--          2  released, and the ownerless object was evicted
--          (a resend of a call that already succeeded returns its first
--          outcome, found in `done`, and changes nothing)
-- Errors:  PSR_INVALID_OPTIONS    a malformed argument, or KEYS of several objects
--          PSR_REFERENCE_INVALID  no live borrow has this token (already
--                                 released, lease expired, object gone)
local rcall = redis.call
--@include keyArg
--@include oneObject
--@include tokenArg
--@include nowMs
--@include recordTtl
--@include purgeLeases
--@include settleObject
--@include finishedCall
--@include markFinished
--@include intArg
--@include fence

local key, err = keyArg('release', KEYS[1], ARGV[1])
if not key then return err end
err = oneObject('release', KEYS[1], { own = KEYS[2], lease = KEYS[3], done = KEYS[4] })
if err then return err end
local token, callToken
token, err = tokenArg('release', 'token', ARGV[2])
if not token then return err end
callToken, err = tokenArg('release', 'call', ARGV[3])
if not callToken then return err end
local grant
grant, err = grantArg('release', ARGV[4])
if not grant then return err end

local call = 'release:' .. callToken
local before = finishedCall(KEYS[4], call, { 1, 2 })
if before then return before end
local now = nowMs()
-- One read of the record for the usual case (no lease lapsed, no lifetime
-- bound passed: purgeLeases would change nothing), instead of the separate
-- reads of the purge, the fence and the checks below; anything else takes
-- the general path. (ZREM and HDEL below leave `mut` as it was.)
local f = rcall('HMGET', KEYS[2], 'ttl', 'until', 'ended', 'g:' .. token, 'owner', 'mut')
local ttl = recordTtlValue(f[1], 30000)
local bound = tonumber(f[2])
local usual = not (bound and not f[3] and now >= bound)
  and #rcall('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1) == 0
local owner, mut = f[5], f[6]
if usual then
  -- fenceError would find the same field: it is called only when it refuses.
  if grant ~= 0 and tonumber(f[4]) ~= grant then err = fenceError(KEYS[2], key, token, grant, 'release') end
else
  purgeLeases(KEYS[1], KEYS[2], KEYS[3], now, ttl)
  err = fenceError(KEYS[2], key, token, grant, 'release')
  owner, mut = rcall('HGET', KEYS[2], 'owner'), rcall('HGET', KEYS[2], 'mut')
end
if err then return err end
if not rcall('ZSCORE', KEYS[3], token) or owner == token then
  return redis.error_reply('PSR_REFERENCE_INVALID the borrow of key ' .. key ..
    ' is invalid: it was already released, its lease expired, or the object is gone')
end

rcall('ZREM', KEYS[3], token)
rcall('HDEL', KEYS[2], 'h:' .. token, 'g:' .. token)
if mut == token then rcall('HSET', KEYS[2], 'mut', '') end
local outcome = 1
if settleObject(KEYS[1], KEYS[2], KEYS[3], now, ttl) == 0 then outcome = 2 end
markFinished(KEYS[4], call, outcome, now, ttl)
return outcome
