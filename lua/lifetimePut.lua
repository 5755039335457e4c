-- lifetimePut: write new objects as members of an open lifetime, in one step:
-- the data, their rules and the membership change together, or not at all.
-- Under a lease, each object and the lifetime's sets get the lease end as
-- their expiry (a StaticLifetime part's: its lease end plus the outage
-- margin, keysExpireAt).
--
-- The call's options apply to every object it writes. With `ttlMs`, each
-- object also has its own end (now + ttlMs, server clock): its keys expire at
-- the earlier of that and the lease's keys, and the object is recorded in the
-- lifetime's `ends` set (scored by its own end) so that an extend never
-- carries it past its own end. With `reads` of 2 or more, each object gets a
-- rules record (its budget of consuming reads, see consume.lua) that expires
-- with it, and is recorded in `ends` too (score 9999999999999 when it has no
-- own end), so that extends and closes handle that record with it.
--
-- A static part notes the put (`seen`). One whose lease end passed gets a
-- fresh lease first if nothing touched it for more than lease / 2 (an outage
-- or a stall: staticLapse), and is refused as ended otherwise (its heartbeat
-- stopped while puts went on).
--
-- A resend of the same call (after a lost reply) writes the same bytes under
-- the same keys again, with the same expiry (the own end its first run
-- recorded in `ends`): it changes nothing more. (Keys are random per call,
-- so no other call writes or reads them before the reply.)
--
-- KEYS[1] meta      the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members   the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3] foreign   the lifetime's set of foreign members, <ns>:{<id>}:foreign
--                   (only to forget those whose own end passed)
-- KEYS[4] ends      the lifetime's members with their own end or rules
--                   record (sorted set: member -> own end, Unix ms),
--                   <ns>:{<id>}:ends
-- KEYS[5...] items  each new object's data key, <ns>:{<id>}:d:<id>~<random>
--                   (inside the lifetime's hash tag), followed by its rules
--                   record, <ns>:{<id>}:rules:<id>~<random>, when reads >= 2,
--                   then by its staging key: the data key again for a value
--                   sent in ARGV, or the staging hash of a chunked value,
--                   <ns>:{<id>}:stage:<id>~<random>:<write id>
--                   (includes/writeData.lua)
-- ARGV[1] reads     consuming reads each object allows: 1 (no rules record:
--                   one read, or none for a proxy that never consumes) or 2
--                   to 1000000000
-- ARGV[2] ttlMs     milliseconds from now to each object's own end (1 to
--                   9999999999999), or 0 for none
-- ARGV[3...] values the objects' bytes, one per object (a chunked value's
--                   manifest)
--
-- Returns: the number of objects written
-- Errors:  PSR_LIFETIME_ENDED   the lifetime is closing, closed, or its lease ran out
--                               (nothing is written)
--          PSR_INVALID_OPTIONS  keys of different lifetimes, a data key outside
--                               the lifetime, a rules key that is not its
--                               object's, not as many values as objects; bad
--                               reads or ttlMs; a malformed manifest
--          PSR_REDIS_OPERATION  a chunked value's staging hash is gone (expired)
--                               or incomplete (nothing is written)
local rcall = redis.call
--@include nowMs
--@include intArg
--@include lifetimePrefix
--@include openLifetime
--@include pruneEnds
--@include setTypeError
--@include writeData

local prefix = lifetimePrefix(KEYS[1], KEYS[2], KEYS[3])
if not prefix or KEYS[4] ~= prefix .. 'ends' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimePut: ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[2]) .. ', ' ..
    shown(KEYS[3]) .. ' and ' .. shown(KEYS[4]) .. ' are not one lifetime')
end
local reads, err1 = intArg('lifetimePut', 'reads', ARGV[1], 1, 1000000000)
if not reads then return err1 end
local ttl, err2 = intArg('lifetimePut', 'ttlMs', ARGV[2], 0, 9999999999999)
if not ttl then return err2 end
local per = 2
if reads > 1 then per = 3 end
local n = #ARGV - 2
if (#KEYS - 4) ~= n * per then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimePut: ' .. (#KEYS - 4) .. ' object keys for ' .. n .. ' values' ..
    (per == 3 and ' (with reads >= 2, a data key, its rules key and its staging key per value)' or ' (a data key and its staging key per value)'))
end
local own = prefix .. 'd:'
local members = {}
for i = 1, n do
  local data = KEYS[4 + (i - 1) * per + 1]
  local member = string.sub(data, #own + 1)
  -- (string.find: no copy of the key is made, as string.match would.)
  if string.find(data, own, 1, true) ~= 1 or not string.find(member, '^[^{}]+$') then
    return redis.error_reply('PSR_INVALID_OPTIONS lifetimePut: data key ' .. shown(data) .. ' is not inside lifetime ' .. shown(KEYS[1]))
  end
  if per == 3 and KEYS[4 + (i - 1) * per + 2] ~= prefix .. 'rules:' .. member then
    return redis.error_reply('PSR_INVALID_OPTIONS lifetimePut: ' .. shown(KEYS[4 + (i - 1) * per + 2]) .. ' is not the rules record of ' .. shown(data))
  end
  members[i] = member
end
-- Each value: in ARGV, or chunks staged (checked before any write).
local states = {}
for i = 1, n do
  local data = KEYS[4 + (i - 1) * per + 1]
  local state, stageErr = stagedData('lifetimePut', data, KEYS[4 + i * per], ARGV[i + 2])
  if not state then return stageErr end
  states[i] = state
end

-- The server clock only when something needs it (a TIME is about as costly
-- as the SET): an own end, a rules record's pruning, a static part's lease.
local now = (ttl > 0 or per == 3) and nowMs() or nil
local open, err = openLifetime('lifetimePut', KEYS[1], now)
if not open then return err end
now = now or open.now
if ttl > 0 and now + ttl > 9999999999999 then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimePut: ttlMs ' .. ttl .. ' would end after 9999999999999 (Unix ms, the year 2286)')
end
-- With a ttl, the own end its first run recorded (a resend keeps it); read
-- before any write, so an `ends` key of another type is refused unchanged
-- (the first member's ZSCORE is that probe: no separate ZCARD).
local ownEnd = ttl > 0 and now + ttl
-- Times go to Redis as text, each formatted once: a Lua number passed to
-- redis.call is printed with '%.17g' (about 2,500 instructions) every time.
local ownEndText = ownEnd and string.format('%d', ownEnd)
local ends, endsText = {}, {}
if ownEnd and n > 0 then
  local endsErr, score = setTypeError('lifetimePut', KEYS[4], 'ZSCORE', members[1])
  if endsErr then return endsErr end
  for i = 1, n do
    if i > 1 then score = rcall('ZSCORE', KEYS[4], members[i]) end
    if score then
      ends[i], endsText[i] = tonumber(score), score
    else
      ends[i], endsText[i] = ownEnd, ownEndText
    end
  end
elseif ownEnd or per == 3 then
  local endsErr = setTypeError('lifetimePut', KEYS[4], 'ZCARD')
  if endsErr then return endsErr end
end

local at = touchLifetime(KEYS[1], open, now)
local atText = at and string.format('%d', at)
for i = 1, n do
  local data = KEYS[4 + (i - 1) * per + 1]
  local e = ends[i]
  local objectAt = atText
  if e and (not at or e < at) then objectAt = endsText[i] end
  if objectAt then
    writeData(data, KEYS[4 + i * per], ARGV[i + 2], states[i], 'pxat', objectAt)
  else
    writeData(data, KEYS[4 + i * per], ARGV[i + 2], states[i], 'none', 0)
  end
  if per == 3 then
    -- (New: nobody can have read it. A resend writes the same budget again.
    -- ARGV[1] is `reads` as intArg checked it: its digits, no leading zero.)
    local rules = KEYS[4 + (i - 1) * per + 2]
    rcall('HSET', rules, 'reads', ARGV[1], 'of', ARGV[1])
    if objectAt then rcall('PEXPIREAT', rules, objectAt) end
  end
end
for i = 1, n, 1000 do
  rcall('SADD', KEYS[2], unpack(members, i, math.min(i + 999, n)))
end
if ownEnd or per == 3 then
  local batch = {}
  for i = 1, n do
    batch[#batch + 1] = endsText[i] or '9999999999999'
    batch[#batch + 1] = members[i]
    if #batch >= 2000 or i == n then
      rcall('ZADD', KEYS[4], unpack(batch))
      batch = {}
    end
  end
  -- Members whose own end passed are gone: forget a few each time. (Under
  -- a lease the sets go at its end, and extends prune: only a lifetime with
  -- no lease, which lives until closed, needs it here.)
  if not at then pruneEnds(KEYS[2], KEYS[3], KEYS[4], now, 100) end
end
if at then
  rcall('PEXPIREAT', KEYS[2], atText)
  if ownEnd or per == 3 then rcall('PEXPIREAT', KEYS[4], atText) end
end
return n
