-- lifetimeOwnedCreate: store a new owned object as an own member of an open
-- lifetime, in one step (store.ownedProxy(value, { lifetime })): the data,
-- its ownership record and the membership change together, or not at all.
-- The lifetime bounds the owner (docs/lifetimes.md, "Owned objects in
-- lifetimes"): the record names it (lt) and, under a lease, its owner's
-- `until` is the lease end (a StaticLifetime part's plus its outage margin,
-- keysExpireAt); the member is recorded in `ends` (9999999999999: no own
-- end) so that closes and extends treat it as owned. The object's keys
-- expire as every owned object's (settleObject), capped by `until` for the
-- owner's part.
--
-- A static part notes the put (`seen`), and deals with a lease end that
-- passed as lifetimePut does (a fresh lease after a silence, else ended).
--
-- KEYS[1] meta     the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members  the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3] foreign  the lifetime's set of foreign members, <ns>:{<id>}:foreign
-- KEYS[4] ends     the lifetime's members with their own end, rules record
--                  or owner (sorted set: member -> own end, Unix ms)
-- KEYS[5] data     the new object's data key, <ns>:{<id>}:d:<id>~<random>
-- KEYS[6] record   its ownership record (hash: owner, mut, ttl, seen, lt, until, h:<token> -> holder)
-- KEYS[7] leases   its handle leases (sorted set: token -> lease end, ms)
-- KEYS[8] stage    KEYS[5] itself for bytes sent in ARGV[2]; for a chunked
--                  value, the staging hash its chunks were written to,
--                  <ns>:{<id>}:stage:<key>:<write id> (includes/writeData.lua)
-- ARGV[1] key      the store key (for messages; must be the key of KEYS[5])
-- ARGV[2] bytes    the serialized object, or a chunked value's manifest
-- ARGV[3] token    the owner's token (a new random token per call)
-- ARGV[4] holder   id of the store instance that renews the owner's lease
-- ARGV[5] ttlMs    lease length, in milliseconds (1 to 30 days)
--
-- Returns: 1 (also for a resend of a call that already succeeded: the
--          object's owner is already this call's token; nothing changes)
-- Errors:  PSR_LIFETIME_ENDED   the lifetime is closing, closed, or its lease ran out
--                               (nothing is written)
--          PSR_ALREADY_OWNED    the key already holds an object or a record
--          PSR_INVALID_OPTIONS  keys of different lifetimes, a data key outside
--                               the lifetime, KEYS of several objects; a
--                               malformed argument
local rcall = redis.call
--@include nowMs
--@include keyArg
--@include oneObject
--@include tokenArg
--@include intArg
--@include lifetimePrefix
--@include openLifetime
--@include setTypeError
--@include writeData
--@include grantLease
--@include settleObject

local prefix = lifetimePrefix(KEYS[1], KEYS[2], KEYS[3])
if not prefix or KEYS[4] ~= prefix .. 'ends' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeOwnedCreate: ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[2]) .. ', ' ..
    shown(KEYS[3]) .. ' and ' .. shown(KEYS[4]) .. ' are not one lifetime')
end
local key, err = keyArg('lifetimeOwnedCreate', KEYS[5], ARGV[1])
if not key then return err end
err = oneObject('lifetimeOwnedCreate', KEYS[5], { own = KEYS[6], lease = KEYS[7] })
if err then return err end
local member = string.sub(KEYS[5], #prefix + 3)
if string.sub(KEYS[5], 1, #prefix + 2) ~= prefix .. 'd:' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeOwnedCreate: data key ' .. shown(KEYS[5]) .. ' is not inside lifetime ' .. shown(KEYS[1]))
end
local token, holder, ttl
token, err = tokenArg('lifetimeOwnedCreate', 'token', ARGV[3])
if not token then return err end
holder, err = tokenArg('lifetimeOwnedCreate', 'holder', ARGV[4])
if not holder then return err end
ttl, err = intArg('lifetimeOwnedCreate', 'ttlMs', ARGV[5], 1, 2592000000)
if not ttl then return err end

if rcall('HGET', KEYS[6], 'owner') == token then return 1 end
local now = nowMs()
local open
open, err = openLifetime('lifetimeOwnedCreate', KEYS[1], now)
if not open then return err end
if rcall('EXISTS', KEYS[5], KEYS[6]) > 0 then
  return redis.error_reply('PSR_ALREADY_OWNED key ' .. key .. ' already exists: ownedProxy always makes a new key, so this is a key collision or a call by hand')
end
err = setTypeError('lifetimeOwnedCreate', KEYS[4], 'ZCARD')
if err then return err end
err = setTypeError('lifetimeOwnedCreate', KEYS[2], 'SCARD')
if err then return err end
local state
state, err = stagedData('lifetimeOwnedCreate', KEYS[5], KEYS[8], ARGV[2])
if not state then return err end

local at = touchLifetime(KEYS[1], open, now)
writeData(KEYS[5], KEYS[8], ARGV[2], state, 'none', 0)
rcall('HSET', KEYS[6], 'owner', token, 'mut', '', 'ttl', ttl, 'lt', string.match(KEYS[1], '{(.-)}'))
if at then rcall('HSET', KEYS[6], 'until', at) end
grantLease(KEYS[6], KEYS[7], token, holder, now, ttl)
settleObject(KEYS[5], KEYS[6], KEYS[7], now, ttl)
rcall('SADD', KEYS[2], member)
rcall('ZADD', KEYS[4], 'NX', 9999999999999, member)
if at then
  rcall('PEXPIREAT', KEYS[2], at)
  rcall('PEXPIREAT', KEYS[4], at)
end
return 1
