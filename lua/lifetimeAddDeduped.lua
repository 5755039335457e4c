-- lifetimeAddDeduped: record deduped objects (dedupe: true) that an open
-- lifetime holds a reference to, in its `dedupe` set, so that its end
-- releases those references (dedupeLifetime) instead of deleting the objects
-- as it deletes its other members. Deduped objects live in their own hash
-- tags; the caller adds the lifetime's reference on each object first
-- (dedupeAdd/dedupePut, ending at the expiry returned here), and releases it
-- again when this call refuses (the lifetime ended meanwhile). Under a lease
-- the set expires with the lifetime's other keys.
--
-- A static part notes the add (`seen`), and deals with a lease end that
-- passed as lifetimeAddKeys does (a fresh lease after a silence, else ended).
-- A resend of the same call adds nothing new (a set).
--
-- KEYS[1] meta       the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] dedupe     the deduped objects it holds, <ns>:{<id>}:dedupe
-- ARGV[1...] keys    the objects' store keys (sha256.<hash>)
--
-- Returns: {added, expiresAtMs}  how many were not recorded yet; the expiry
--          its members carry (the lease end; a static part's plus its
--          margin), or -1 without a lease
-- Errors:  PSR_LIFETIME_ENDED   the lifetime is closing, closed, or its lease ran out
--          PSR_INVALID_OPTIONS  KEYS[2] is not the set of KEYS[1]; a key that
--                               is not a deduped object's store key
local rcall = redis.call
--@include nowMs
--@include shown
--@include openLifetime
--@include setTypeError

local prefix = string.match(KEYS[1], '^([^{}]+:{[%w_%-]+}:)lt$')
if not prefix or KEYS[2] ~= prefix .. 'dedupe' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddDeduped: ' .. shown(KEYS[1]) .. ' and ' .. shown(KEYS[2]) .. ' are not one lifetime')
end
for i = 1, #ARGV do
  if not string.match(ARGV[i], '^sha256%.[%w_%-]+$') then
    return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddDeduped: ' .. shown(ARGV[i]) .. ' is not the key of a deduped object (sha256.<hash>)')
  end
end

local now = nowMs()
local open, err = openLifetime('lifetimeAddDeduped', KEYS[1], now)
if not open then return err end
-- (SRANDMEMBER: a read of a set that the minimal ACL user has, where SCARD is not.)
local setErr = setTypeError('lifetimeAddDeduped', KEYS[2], 'SRANDMEMBER')
if setErr then return setErr end

local at = touchLifetime(KEYS[1], open, now)
local added = 0
for i = 1, #ARGV, 1000 do
  added = added + rcall('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if at then rcall('PEXPIREAT', KEYS[2], at) end
return {added, at or -1}
