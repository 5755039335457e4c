-- lifetimeClose: one bounded step of closing a lifetime. The first call marks
-- it 'closing' (from then on it takes no new objects); each call evicts up to
-- `count` members; the call that finds no member left turns the meta into an
-- 'ended' marker that expires after endedTtlMs (it only serves error
-- messages). Call it until `finished`. Calls from several processes at once
-- are fine (SPOP hands each member to one of them); closing an ended lifetime
-- is a no-op.
--
-- Foreign members live in other slots. With foreign = 'touch' (a single
-- Redis) they are unlinked here. With 'return' (Redis Cluster) they are moved
-- to the `evicting` set and returned; the caller unlinks them on their nodes
-- and names them in `unlinked` on its next call, which removes them from
-- `evicting`. The lifetime ends only once `evicting` is empty, and a step that
-- finds nothing else left hands out what `evicting` still holds (the share of
-- a closer that died, or of one still at work: unlinking twice is harmless),
-- so a close that crashed between the two steps is finished by the next one.
--
-- Each step carries its own token and records its outcome in the meta
-- (closeStep: "<token> <finished> <evicted> <before>"), so the same step
-- sent again after a lost reply answers as the first time and evicts nothing
-- more. (With 'return', the resend hands out what `evicting` holds: the
-- first run's share is parked there until the caller names it in `unlinked`.)
--
-- KEYS[1] meta        the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members     the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3] foreign     the lifetime's set of foreign members, <ns>:{<id>}:foreign
-- KEYS[4] evicting    foreign members handed to a closer and not yet unlinked,
--                     <ns>:{<id>}:evicting (it gets the lease's TTL, if any)
-- KEYS[5] ends        the lifetime's members with their own end or rules
--                     record, <ns>:{<id>}:ends: while it exists, each evicted
--                     member's rules record goes with it; deleted at the end
-- KEYS[6] futures     the lifetime's futures, <ns>:{<id>}:futures: each one this
--                     step evicts that has no result yet (no value, an empty
--                     signal stream) gets the signal 'ended' on its stream,
--                     <ns>:{<id>}:sig:<member> (a derived key), which wakes its
--                     waiters with LifetimeEndedError and makes a later set
--                     fail; one that has its result loses its signal with its
--                     value; deleted at the end
-- KEYS[7] dedupe      the deduped objects the lifetime holds a reference on,
--                     <ns>:{<id>}:dedupe: only looked at (EXISTS) by the step
--                     that finishes, so that the caller releases those
--                     references (src/dedupe/lifetime.ts) only when there are any
-- ARGV[1] count       the most members this call evicts or hands out (1 to 1000000)
-- ARGV[2] endedTtlMs  how long the 'ended' marker lives, in milliseconds
-- ARGV[3] foreign     touch | return (see above)
-- ARGV[4] token       this step's token
-- ARGV[5...] unlinked foreign data keys the caller unlinked since its last call
--
-- Derived keys: own members' data keys, <ns>:{<id>}:d:<member>, rules
-- records, <ns>:{<id>}:rules:<member>, and unset futures' signal streams,
-- <ns>:{<id>}:sig:<member>, share the lifetime's hash tag; with
-- foreign = 'touch', foreign members are whole data keys in other hash tags
-- (on one server), and their rules records sit beside them. (With 'return'
-- the caller unlinks each handed member's data key and rules record.) The
-- step's own members are chosen (SRANDMEMBER) and their derived keys checked
-- (checkLocal) before the first write, then removed (SREM) and unlinked, so a
-- Redis Cluster slot in migration stops the step before it changes anything
-- ("Script attempted to access a non local key"), never half-way: the caller
-- sends the same step again.
--
-- Owned members (docs/lifetimes.md, "Owned objects in lifetimes") are ended
-- as owned objects: the owner's lease leaves, the record says the lifetime
-- ended it, and the object is evicted now when nothing borrows it, else by
-- the ownership script that ends its last borrow (ownedMember). Own ones are
-- recorded in `ends` (so only a lifetime with an `ends` set looks for them);
-- their ownership records and leases (<ns>:{<id>}:own:<member>,
-- <ns>:{<id>}:lease:<member>) are derived and checked as the data keys are.
-- With 'return', the caller ends each handed member on its node the same
-- way (lua/memberEnd.lua).
--
-- Returns: {finished, evicted, before, handed, deduped}  finished is 1 once
--          nothing is left; evicted counts the members this call unlinked;
--          before is the state this call found: open | closing | ended |
--          missing (Redis no longer knows the lifetime: its lease ran out, or
--          its marker expired); handed lists the foreign data keys the caller
--          must unlink (always empty with 'touch', and when finished); deduped
--          is 1 when the step finished and the lifetime still holds deduped
--          objects (KEYS[7] exists), else 0
-- Errors:  PSR_INVALID_OPTIONS  bad count, endedTtlMs, foreign, token or
--                               unlinked key; keys of different lifetimes
local rcall = redis.call
--@include nowMs
--@include intArg
--@include tokenArg
--@include lifetimePrefix
--@include foreignMode
--@include metaFields
--@include isDataKey
--@include checkLocal
--@include objectKey
--@include ownedMember

local prefix = lifetimePrefix(KEYS[1], KEYS[2], KEYS[3])
if not prefix or KEYS[4] ~= prefix .. 'evicting' or KEYS[5] ~= prefix .. 'ends' or KEYS[6] ~= prefix .. 'futures'
    or KEYS[7] ~= prefix .. 'dedupe' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeClose: ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[2]) .. ', ' ..
    shown(KEYS[3]) .. ', ' .. shown(KEYS[4]) .. ', ' .. shown(KEYS[5]) .. ', ' .. shown(KEYS[6]) .. ' and ' .. shown(KEYS[7]) ..
    ' are not one lifetime')
end
local count, err = intArg('lifetimeClose', 'count', ARGV[1], 1, 1000000)
if not count then return err end
local endedTtl, err2 = intArg('lifetimeClose', 'endedTtlMs', ARGV[2], 1, 9999999999999)
if not endedTtl then return err2 end
local touch = foreignMode(ARGV[3])
if touch == nil then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeClose: foreign must be touch or return, got ' .. shown(ARGV[3]))
end
local token, err3 = tokenArg('lifetimeClose', 'token', ARGV[4])
if not token then return err3 end
for i = 5, #ARGV do
  if not isDataKey(prefix, ARGV[i]) then
    return redis.error_reply('PSR_INVALID_OPTIONS lifetimeClose: unlinked ' .. shown(ARGV[i]) .. ' is not the data key of an object of this namespace')
  end
end
local meta, err4 = metaFields('lifetimeClose', KEYS[1], 'state', 'closeStep')
if not meta then return err4 end
local state = meta[1]

local function forgetUnlinked()
  for i = 5, #ARGV, 1000 do
    rcall('SREM', KEYS[4], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end

-- This very step, sent again: answer as its first run did.
local _, _, stepToken, wasFinished, wasEvicted, wasBefore = string.find(meta[2] or '', '^(%S+) ([01]) (%d+) (%a+)$')
if stepToken == token then
  forgetUnlinked()
  local handed = {}
  if wasFinished == '0' and not touch then handed = rcall('SRANDMEMBER', KEYS[4], count) end
  local deduped = 0
  if wasFinished == '1' then deduped = rcall('EXISTS', KEYS[7]) end
  return {tonumber(wasFinished), tonumber(wasEvicted), wasBefore, handed, deduped}
end

if state == 'ended' then
  forgetUnlinked()
  return {1, 0, 'ended', {}, rcall('EXISTS', KEYS[7])}
end

-- Members with a rules record are all in `ends`: while it exists, each
-- evicted data key takes its rules record along.
local withRules = rcall('EXISTS', KEYS[5]) == 1
-- Futures without a result are all in `futures`: while it exists, each is
-- looked up there, and those found get the signal 'ended'.
local withFutures = rcall('EXISTS', KEYS[6]) == 1
-- This step's own members, read and checked (with their rules records and
-- signal streams) before anything is written.
local members = rcall('SRANDMEMBER', KEYS[2], count)
local own, derived, unset, signals, futures = {}, {}, {}, {}, {}
for i = 1, #members do
  own[i] = prefix .. 'd:' .. members[i]
  derived[#derived + 1] = own[i]
  if withRules then
    -- (and, for an owned member, its ownership record and leases)
    derived[#derived + 1] = prefix .. 'rules:' .. members[i]
    derived[#derived + 1] = prefix .. 'own:' .. members[i]
    derived[#derived + 1] = prefix .. 'lease:' .. members[i]
  end
  if withFutures and rcall('SISMEMBER', KEYS[6], members[i]) == 1 then
    futures[#futures + 1] = members[i]
    local signal = prefix .. 'sig:' .. members[i]
    derived[#derived + 1] = signal
  end
end
checkLocal(derived)
for _, member in ipairs(futures) do
  local signal = prefix .. 'sig:' .. member
  local length = redis.pcall('XLEN', signal)
  if type(length) ~= 'number' then length = 1 end
  if length == 0 and rcall('EXISTS', prefix .. 'd:' .. member) == 0 then
    unset[#unset + 1] = signal
  else
    signals[#signals + 1] = signal
  end
end
local lt = string.match(KEYS[1], '{(.-)}')

forgetUnlinked()
local now = nowMs()
if state == 'open' then rcall('HSET', KEYS[1], 'state', 'closing', 'closingAt', now) end
-- Owned members (checkOwned: own members are in `ends` when owned, foreign
-- ones may have been owned since they joined) are not unlinked: their owner
-- ends, and the object goes now or when its last borrow ends (ownedMember).
local function unlinkAll(keys, checkOwned)
  if checkOwned then
    local plain = {}
    for _, data in ipairs(keys) do
      if isOwned(data) then endOwnedMember(data, lt, now) else plain[#plain + 1] = data end
    end
    keys = plain
  end
  if withRules then
    local both = {}
    for _, data in ipairs(keys) do
      both[#both + 1] = data
      both[#both + 1] = objectKey(data, 'rules') or data
    end
    keys = both
  end
  for i = 1, #keys, 1000 do
    rcall('UNLINK', unpack(keys, i, math.min(i + 999, #keys)))
  end
end

local evicted = 0
local handed = {}
if #own > 0 then
  for i = 1, #members, 1000 do
    rcall('SREM', KEYS[2], unpack(members, i, math.min(i + 999, #members)))
  end
  unlinkAll(own, withRules)
  evicted = #own
  for _, signal in ipairs(unset) do
    rcall('XADD', signal, '*', 's', 'ended')
    rcall('PEXPIRE', signal, endedTtl)
  end
  for i = 1, #signals, 1000 do
    rcall('UNLINK', unpack(signals, i, math.min(i + 999, #signals)))
  end
  for i = 1, #futures, 1000 do
    rcall('SREM', KEYS[6], unpack(futures, i, math.min(i + 999, #futures)))
  end
end
if evicted < count then
  local foreign = rcall('SPOP', KEYS[3], count - evicted)
  if #foreign > 0 and touch then
    unlinkAll(foreign, true)
    evicted = evicted + #foreign
  elseif #foreign > 0 then
    for i = 1, #foreign, 1000 do
      rcall('SADD', KEYS[4], unpack(foreign, i, math.min(i + 999, #foreign)))
    end
    -- Under a lease the set lives no longer than the lifetime's other keys.
    local ttl = rcall('PTTL', KEYS[1])
    if ttl > 0 then rcall('PEXPIRE', KEYS[4], ttl) end
    handed = foreign
  end
end
if evicted + #handed < count and rcall('EXISTS', KEYS[2], KEYS[3]) == 0 then
  -- Only `evicting` is left: foreign members another closer took and has not
  -- confirmed yet. Unlink them here, or hand them out again.
  if touch then
    local left = rcall('SPOP', KEYS[4], count - evicted)
    unlinkAll(left, true)
    evicted = evicted + #left
  elseif #handed == 0 then
    handed = rcall('SRANDMEMBER', KEYS[4], count - evicted)
  end
end

local before = state or 'missing'
local finished = 1
if rcall('EXISTS', KEYS[2], KEYS[3], KEYS[4]) > 0 then finished = 0 end
if state then
  if finished == 1 then
    rcall('DEL', KEYS[5], KEYS[6])
    rcall('HSET', KEYS[1], 'state', 'ended', 'endedAt', now)
    rcall('HDEL', KEYS[1], 'expiresAt')
    rcall('PEXPIRE', KEYS[1], endedTtl)
  end
  rcall('HSET', KEYS[1], 'closeStep', token .. ' ' .. finished .. ' ' .. evicted .. ' ' .. before)
end
if finished == 0 then return {0, evicted, before, handed, 0} end
return {1, evicted, before, {}, rcall('EXISTS', KEYS[7])}
