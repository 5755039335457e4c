-- dedupePut: store a deduped object with one reference, or, when equal
-- bytes are stored already (the same key: it is their hash), add the
-- reference and write nothing. The bytes travel with this call: small values
-- go with the first call, large ones only after dedupeAdd found the object
-- missing (src/redis/dedupe.ts).
--
-- A resend of the same call (after a lost reply) finds the object and its
-- reference, and adds nothing more.
--
-- KEYS[1] data   the object's data key, <ns>:{sha256.<hash>}:d:sha256.<hash>
-- KEYS[2] refs   its references, <ns>:{sha256.<hash>}:refs:sha256.<hash>
-- ARGV[1] ref    the reference: p:<call token> or l:<lifetime id>
-- ARGV[2] ttlMs  milliseconds from now until the reference ends, or 0
-- ARGV[3] atMs   when the reference ends (Unix ms), or 0; both 0: it ends
--                when it is released
-- ARGV[4] value  the object's bytes (whose SHA-256 is <hash>)
--
-- Returns: 1  equal bytes were stored: the reference was added
--          2  the object was written, with this one reference
-- Errors:  PSR_INVALID_OPTIONS  KEYS that are not one deduped object's; a bad
--                               ref, ttlMs or atMs
--          PSR_SERIALIZATION    the keys hold other Redis types
local rcall = redis.call
--@include nowMs
--@include intArg
--@include dedupeRefs

local _, err = dedupeKeys('dedupePut', KEYS[1], KEYS[2])
if err then return err end
local ref, err2 = dedupeRef('dedupePut', ARGV[1])
if not ref then return err2 end
local e, err3 = dedupeEnd('dedupePut', ARGV[2], ARGV[3])
if not e then return err3 end

-- (One EXISTS of both: 2 only when both are there, 0 when neither is.)
local existing = rcall('EXISTS', KEYS[1], KEYS[2])
if existing == 2 then
  local err4 = dedupeTypes('dedupePut', KEYS[1], KEYS[2])
  if err4 then return err4 end
  dedupeAddRef(KEYS[2], ref, e)
  dedupeSettle(KEYS[1], KEYS[2], nowMs())
  return 1
end
-- (References left without their data: dropped; the data key is overwritten.)
if existing > 0 then rcall('DEL', KEYS[2]) end
if e < NO_END then
  local score = dedupeScore(e)
  rcall('SET', KEYS[1], ARGV[4], 'PXAT', score)
  rcall('ZADD', KEYS[2], score, ref)
  rcall('PEXPIREAT', KEYS[2], score)
else
  -- (A SET without KEEPTTL drops any TTL the key had.)
  rcall('SET', KEYS[1], ARGV[4])
  rcall('ZADD', KEYS[2], '9999999999999', ref)
end
return 2
