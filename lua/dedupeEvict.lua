-- dedupeEvict: store.evict of a deduped object: take away one put's
-- reference, and delete the object when it was the last reference of all.
-- References are anonymous (equal bytes, equal keys), so the one taken is the
-- one that would keep the object longest (one without an end first): once
-- every holder has evicted or seen its ttl pass, no reference without an end
-- is left and nothing outlives its holders. Lifetimes' references are never
-- taken here: they go at their lifetime's end.
--
-- The call's token and outcome are recorded in the object's set of finished
-- calls (kept at least 60 s, with a TTL), so the same call sent again after
-- a lost reply answers as its first run and takes no second reference.
--
-- KEYS[1] data    the object's data key, <ns>:{sha256.<hash>}:d:sha256.<hash>
-- KEYS[2] refs    its references, <ns>:{sha256.<hash>}:refs:sha256.<hash>
-- KEYS[3] done    its recently finished calls, <ns>:{sha256.<hash>}:done:sha256.<hash>
-- ARGV[1] token   this call's token
-- ARGV[2] keepMs  how long its outcome is remembered (the command timeout;
--                 at least 60 s are kept), 1 to 9999999999999
--
-- Returns: 0  no put's reference to take (the object is missing, or only
--             lifetimes hold it): nothing changed
--          1  one reference taken; others are left
--          2  the last reference taken: the object was deleted
-- Errors:  PSR_INVALID_OPTIONS  KEYS that are not one deduped object's; a bad
--                               token or keepMs
--          PSR_SERIALIZATION    the keys hold other Redis types
local rcall = redis.call
--@include nowMs
--@include intArg
--@include tokenArg
--@include finishedCall
--@include markFinished
--@include setTypeError
--@include dedupeRefs

local member, err, prefix = dedupeKeys('dedupeEvict', KEYS[1], KEYS[2])
if err then return err end
if KEYS[3] ~= prefix .. 'done:' .. member then
  return redis.error_reply('PSR_INVALID_OPTIONS dedupeEvict: KEYS[3] must be ' .. shown(prefix .. 'done:' .. member) .. ', got ' .. shown(KEYS[3]))
end
local token, err2 = tokenArg('dedupeEvict', 'token', ARGV[1])
if not token then return err2 end
local keep, err3 = intArg('dedupeEvict', 'keepMs', ARGV[2], 1, 9999999999999)
if not keep then return err3 end
local err4 = dedupeTypes('dedupeEvict', KEYS[1], KEYS[2])
if err4 then return err4 end
local doneErr = setTypeError('dedupeEvict', KEYS[3], 'ZCARD')
if doneErr then return doneErr end

local call = 'evict:' .. token
local was = finishedCall(KEYS[3], call, { 0, 1, 2 })
if was then return was end

local now = nowMs()
rcall('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
-- The put's reference with the latest end (at equal ends, 'p:' sorts after 'l:').
local taken
local from = 0
while not taken do
  local page = rcall('ZRANGE', KEYS[2], from, from + 99, 'REV')
  if #page == 0 then break end
  for _, ref in ipairs(page) do
    if string.sub(ref, 1, 2) == 'p:' then
      taken = ref
      break
    end
  end
  from = from + 100
end
local outcome = 0
if taken then
  rcall('ZREM', KEYS[2], taken)
  if rcall('EXISTS', KEYS[1]) == 1 then
    outcome = 1
    if dedupeSettle(KEYS[1], KEYS[2], now) == 0 then outcome = 2 end
  else
    -- References without data: the object is gone (its bytes were lost); tidy up.
    rcall('UNLINK', KEYS[2])
  end
end
markFinished(KEYS[3], call, outcome, now, keep)
return outcome
