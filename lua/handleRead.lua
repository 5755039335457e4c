-- handleRead: resolve an ownership handle (OwnedProxy, RefProxy, RefMutProxy):
-- check that its token still holds a lease and return the object's bytes, in
-- one step, so a handle whose lease lapsed (its process stalled past
-- leaseTtl while another process took a mutable borrow and wrote) reads
-- nothing. Resolving a plain proxy stays a plain GET.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, ttl, seen, v, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- ARGV[1] key     the store key (for messages; must be the key of KEYS[1])
-- ARGV[2] token   the handle's token
-- ARGV[3] known   the version whose bytes the caller has cached, or -1 for none
--                 (src/cache/: then only the check and the version travel)
--
-- Returns: { bytes, version }: the object's bytes and its version (field `v`
--          of the record, absent = 0; lua/update.lua bumps it), read together;
--          { manifest, version, 1 } for a chunked object (a hash, src/chunks/):
--          the caller reads its chunks of that write id under the same lease
--          (an update in between swaps the whole hash: the caller finds the
--          chunks gone and reads again);
--          { false, version } when version is `known` (the caller's cached
--          bytes are current). Reads change nothing, unless they purge lapsed
--          leases as every ownership script does.
-- Errors:  PSR_INVALID_OPTIONS            a malformed argument, or KEYS of several objects
--          PSR_REFERENCE_INVALID          no live handle has this token (released,
--                                         dropped, moved, lease expired)
--          PSR_LIFETIME_ENDED             the token was the owner's, and the object's
--                                         lifetime ended it (lifetimeBound)
--          PSR_PROXY_RESOLVE_MISSING_KEY  the token is live but the bytes are gone
--                                         (store.evict of an owned key)
local rcall = redis.call
--@include keyArg
--@include oneObject
--@include tokenArg
--@include nowMs
--@include recordTtl
--@include purgeLeases
--@include settleObject
--@include intArg

local key, err = keyArg('handleRead', KEYS[1], ARGV[1])
if not key then return err end
err = oneObject('handleRead', KEYS[1], { own = KEYS[2], lease = KEYS[3] })
if err then return err end
local token
token, err = tokenArg('handleRead', 'token', ARGV[2])
if not token then return err end
local known
known, err = intArg('handleRead', 'known', ARGV[3], -1, 999999999999999)
if not known then return err end

purgeLeases(KEYS[1], KEYS[2], KEYS[3], nowMs(), recordTtl(KEYS[2], 30000))
if not rcall('ZSCORE', KEYS[3], token) then
  if rcall('HGET', KEYS[2], 'endedOwner') == token then return endedError(KEYS[2], KEYS[3], key) end
  return redis.error_reply('PSR_REFERENCE_INVALID the handle of key ' .. key ..
    ' is invalid: it was released, dropped or moved, or its lease expired (its process stalled longer than leaseTtl?)')
end
local version = tonumber(rcall('HGET', KEYS[2], 'v') or '0')
if version == known and rcall('EXISTS', KEYS[1]) == 1 then return { false, version } end
local bytes = redis.pcall('GET', KEYS[1])
if type(bytes) == 'table' and bytes.err then
  local manifest = rcall('TYPE', KEYS[1])['ok'] == 'hash' and rcall('HGET', KEYS[1], 'm')
  if not manifest then
    return redis.error_reply('PSR_SERIALIZATION handleRead: Redis key ' .. shown(KEYS[1]) ..
      ' holds a value of another Redis type, not one written by proxystore-redis')
  end
  return { manifest, version, 1 }
end
if not bytes then
  return redis.error_reply('PSR_PROXY_RESOLVE_MISSING_KEY key ' .. key ..
    ' is missing although its handle is live: it was deleted behind its owner\'s back (store.evict of an owned key?)')
end
return { bytes, version }
