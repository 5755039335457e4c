-- intoOwned: give an object that is already stored (a plain proxy's key) its
-- one owner. From now on its keys expire with the owner's lease (plus the
-- outage margin, see settleObject).
--
-- An object with an expiry (its ttl, or a lease lifetime's end) keeps it as
-- its owner's bound (record field `until`, lifetimeBound): owning an object
-- never lengthens its life. An own member of a lifetime (in the members set
-- of the lifetime whose hash tag it shares) becomes an owned member of it
-- (docs/lifetimes.md, "Owned objects in lifetimes"): record field lt, and
-- recorded in the lifetime's `ends`, so its close and extends treat it as
-- owned; of a lifetime that is closing or ended, it is refused. A foreign
-- member (another slot) is not known here: its lifetime's close and extends
-- find its ownership record themselves (lua/memberEnd.lua, memberExpire.lua).
--
-- KEYS[1] data     the object's data key
-- KEYS[2] record   its ownership record (hash: owner, mut, ttl, seen, h:<token> -> holder)
-- KEYS[3] leases   its handle leases (sorted set: token -> lease end, ms)
-- KEYS[4] members  the own-members set of the lifetime whose hash tag the
--                  object shares (<ns>:{<tag>}:members; usually no such set)
-- KEYS[5] meta     that lifetime's meta hash (<ns>:{<tag>}:lt)
-- KEYS[6] ends     that lifetime's `ends` set (<ns>:{<tag>}:ends)
-- ARGV[1] key      the store key (for messages; must be the key of KEYS[1])
-- ARGV[2] token    the new owner's token (a new random token per call)
-- ARGV[3] holder   id of the store instance that renews the owner's lease
-- ARGV[4] ttlMs    lease length, in milliseconds (1 to 30 days)
--
-- Returns: 1 (also for a resend of a call that already succeeded: the
--          object's owner is already this call's token; nothing changes)
-- Errors:  PSR_INVALID_OPTIONS            a malformed argument, or KEYS of several objects
--          PSR_PROXY_RESOLVE_MISSING_KEY  no object under the key
--          PSR_ALREADY_OWNED              the object already has an owner, or its
--                                         dropped owner still has borrows
--          PSR_LIFETIME_ENDED             it is an own member of a lifetime that is
--                                         closing or ended, or its lifetime ended
--                                         an earlier owner
local rcall = redis.call
--@include keyArg
--@include oneObject
--@include tokenArg
--@include intArg
--@include nowMs
--@include recordTtl
--@include purgeLeases
--@include grantLease
--@include settleObject
--@include lifetimeEnded
--@include lifetimeBound
--@include metaFields
--@include setTypeError

local key, err = keyArg('intoOwned', KEYS[1], ARGV[1])
if not key then return err end
err = oneObject('intoOwned', KEYS[1], { own = KEYS[2], lease = KEYS[3] })
if err then return err end
local prefix, stored = string.match(KEYS[1], '^([^{}]+:{([^{}]+)}:)d:')
for i, kind in ipairs({ 'members', 'lt', 'ends' }) do
  if KEYS[3 + i] ~= prefix .. kind then
    return redis.error_reply('PSR_INVALID_OPTIONS intoOwned: KEYS[' .. (3 + i) .. '] must be ' .. shown(prefix .. kind) .. ', got ' .. shown(KEYS[3 + i]))
  end
end
local token, holder, ttl
token, err = tokenArg('intoOwned', 'token', ARGV[2])
if not token then return err end
holder, err = tokenArg('intoOwned', 'holder', ARGV[3])
if not holder then return err end
ttl, err = intArg('intoOwned', 'ttlMs', ARGV[4], 1, 2592000000)
if not ttl then return err end

if rcall('HGET', KEYS[2], 'owner') == token then return 1 end
local member = string.sub(KEYS[1], #prefix + 3)
local now = nowMs()
local inLifetime = rcall('SISMEMBER', KEYS[4], member) == 1
if inLifetime then
  local meta, metaErr = metaFields('intoOwned', KEYS[5], 'state')
  if not meta then return metaErr end
  if meta[1] ~= 'open' then return lifetimeEnded(KEYS[5], meta[1], now) end
  err = setTypeError('intoOwned', KEYS[6], 'ZCARD')
  if err then return err end
end
if rcall('EXISTS', KEYS[2]) == 1 then
  err = endedError(KEYS[2], KEYS[3], key)
  if err then return err end
  if purgeLeases(KEYS[1], KEYS[2], KEYS[3], now, recordTtl(KEYS[2], ttl)) == 1 then
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

rcall('HSET', KEYS[2], 'owner', token, 'mut', '', 'ttl', ttl)
-- Its expiry as it is owned (its ttl, its lease's end) bounds the owner.
local expiry = rcall('PEXPIRETIME', KEYS[1])
if expiry > 0 then rcall('HSET', KEYS[2], 'until', expiry) end
if inLifetime then
  rcall('HSET', KEYS[2], 'lt', stored)
  if rcall('ZADD', KEYS[6], 'NX', 9999999999999, member) == 1 then
    local setsAt = rcall('PEXPIRETIME', KEYS[4])
    if setsAt > 0 then rcall('PEXPIREAT', KEYS[6], setsAt) end
  end
end
grantLease(KEYS[2], KEYS[3], token, holder, now, ttl)
settleObject(KEYS[1], KEYS[2], KEYS[3], now, ttl)
return 1
