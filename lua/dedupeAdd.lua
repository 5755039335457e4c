-- dedupeAdd: add a reference to a deduped object that is already stored,
-- without its bytes (a put of equal bytes sends only this: see
-- src/redis/dedupe.ts). When the object is missing, nothing is written and
-- the caller sends dedupePut with the bytes.
--
-- A resend of the same call (after a lost reply) adds nothing more: a put's
-- reference is named by the call's token, a lifetime's by the lifetime, and
-- a reference that is there already is not added twice.
--
-- KEYS[1] data   the object's data key, <ns>:{sha256.<hash>}:d:sha256.<hash>
-- KEYS[2] refs   its references, <ns>:{sha256.<hash>}:refs:sha256.<hash>
--                (sorted set: reference -> its end, Unix ms)
-- ARGV[1] ref    the reference: p:<call token> or l:<lifetime id>
-- ARGV[2] ttlMs  milliseconds from now until the reference ends, or 0
-- ARGV[3] atMs   when the reference ends (Unix ms), or 0; both 0: it ends
--                when it is released (evict, the lifetime's close)
--
-- Returns: 1  the object is stored and holds the reference
--          0  the object is missing: nothing was written
-- Errors:  PSR_INVALID_OPTIONS  KEYS that are not one deduped object's; a bad
--                               ref, ttlMs or atMs
--          PSR_SERIALIZATION    the keys hold other Redis types
local rcall = redis.call
--@include nowMs
--@include intArg
--@include dedupeRefs

local _, err = dedupeKeys('dedupeAdd', KEYS[1], KEYS[2])
if err then return err end
local ref, err2 = dedupeRef('dedupeAdd', ARGV[1])
if not ref then return err2 end
local e, err3 = dedupeEnd('dedupeAdd', ARGV[2], ARGV[3])
if not e then return err3 end

-- Data without references (or references without data) is no object: the
-- caller writes it anew.
-- (One EXISTS of both: 2 only when both are there.)
if rcall('EXISTS', KEYS[1], KEYS[2]) < 2 then return 0 end
local err4 = dedupeTypes('dedupeAdd', KEYS[1], KEYS[2])
if err4 then return err4 end
dedupeAddRef(KEYS[2], ref, e)
dedupeSettle(KEYS[1], KEYS[2], nowMs())
return 1
