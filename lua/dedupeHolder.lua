-- dedupeHolder: what a holder does with the reference it holds on a deduped
-- object: release it (a lifetime at its end, or a put whose outcome was
-- unclear taking back its own reference; the object is deleted when that was
-- its last reference: a lifetime end decrements, it never deletes an object
-- that others hold), or move its end (a lease's extend). Both change nothing
-- when the holder has no reference, so a resend (after a lost reply) and a
-- second closer are harmless.
--
-- KEYS[1] data      the object's data key, <ns>:{sha256.<hash>}:d:sha256.<hash>
-- KEYS[2] refs      its references, <ns>:{sha256.<hash>}:refs:sha256.<hash>
-- ARGV[1] ref       the reference: l:<lifetime id> or p:<put's call token>
-- ARGV[2] action    release | extend
-- ARGV[3] atMs      extend: the reference's new end (Unix ms), 0 for none;
--                   release: 0
--
-- Returns: 0  the holder had no reference: nothing changed
--          1  done; the object has other references (or still this one)
--          2  released the last reference: the object was deleted
-- Errors:  PSR_INVALID_OPTIONS  KEYS that are not one deduped object's; a bad
--                               ref, action or atMs
--          PSR_SERIALIZATION    the keys hold other Redis types
local rcall = redis.call
--@include nowMs
--@include intArg
--@include dedupeRefs

local _, err = dedupeKeys('dedupeHolder', KEYS[1], KEYS[2])
if err then return err end
local ref, err2 = dedupeRef('dedupeHolder', ARGV[1])
if not ref then return err2 end
local action = ARGV[2]
if action ~= 'release' and action ~= 'extend' then
  return redis.error_reply('PSR_INVALID_OPTIONS dedupeHolder: action must be release or extend, got ' .. shown(action))
end
local at, err3 = intArg('dedupeHolder', 'atMs', ARGV[3], 0, 9999999999999)
if not at then return err3 end
local err4 = dedupeTypes('dedupeHolder', KEYS[1], KEYS[2])
if err4 then return err4 end

if not rcall('ZSCORE', KEYS[2], ref) then return 0 end
local now = nowMs()
if action == 'release' then
  rcall('ZREM', KEYS[2], ref)
else
  if at == 0 then at = NO_END end
  rcall('ZADD', KEYS[2], 'XX', dedupeScore(at), ref)
end
if rcall('EXISTS', KEYS[1]) == 0 then
  rcall('UNLINK', KEYS[2])
  return 2
end
if dedupeSettle(KEYS[1], KEYS[2], now) == 0 then return 2 end
return 1
