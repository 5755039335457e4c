-- intoOwned: give an object that is already stored (a plain proxy's key) its
-- one owner. From now on its keys expire with the owner's lease (plus the
-- outage margin, see settleObject). An own member of a lifetime is refused:
-- owned objects and lifetimes cannot share an object yet.
--
-- KEYS[1] data     the object's data key
-- KEYS[2] record   its ownership record (hash: owner, mut, ttl, seen, h:<token> -> holder)
-- KEYS[3] leases   its handle leases (sorted set: token -> lease end, ms)
-- KEYS[4] members  the own-members set of the lifetime whose hash tag the
--                  object shares (<ns>:{<tag>}:members; usually no such set)
-- ARGV[1] key      the store key (for messages; must be the key of KEYS[1])
-- ARGV[2] token    the new owner's token (a new random token per call)
-- ARGV[3] holder   id of the store instance that renews the owner's lease
-- ARGV[4] ttlMs    lease length, in milliseconds (1 to 30 days)
--
-- Returns: 1 (also for a resend of a call that already succeeded: the
--          object's owner is already this call's token; nothing changes)
-- Errors:  PSR_INVALID_OPTIONS            a malformed argument, or KEYS of several objects
--          PSR_PROXY_RESOLVE_MISSING_KEY  no object under the key
--          PSR_ALREADY_OWNED              the object already has an owner, its
--                                         dropped owner still has borrows, or it
--                                         is a member of a lifetime
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

local key, err = keyArg('intoOwned', KEYS[1], ARGV[1])
if not key then return err end
err = oneObject('intoOwned', KEYS[1], { own = KEYS[2], lease = KEYS[3] })
if err then return err end
local prefix, stored = string.match(KEYS[1], '^([^{}]+:{([^{}]+)}:)d:')
if KEYS[4] ~= prefix .. 'members' then
  return redis.error_reply('PSR_INVALID_OPTIONS intoOwned: KEYS[4] must be ' .. shown(prefix .. 'members') .. ', got ' .. shown(KEYS[4]))
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
if rcall('SISMEMBER', KEYS[4], member) == 1 then
  return redis.error_reply('PSR_ALREADY_OWNED key ' .. key .. ' belongs to lifetime ' .. shown(stored) ..
    ': owned objects cannot join lifetimes yet (each would evict it on its own terms); keep it in the lifetime, or own a copy: store.ownedProxy(await resolve(proxy))')
end

local now = nowMs()
if rcall('EXISTS', KEYS[2]) == 1 then
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
grantLease(KEYS[2], KEYS[3], token, holder, now, ttl)
settleObject(KEYS[1], KEYS[2], KEYS[3], now, ttl)
return 1
