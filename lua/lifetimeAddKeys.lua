-- lifetimeAddKeys: make existing objects members of an open lifetime. A data
-- key inside the lifetime's hash tag becomes an own member (its store key, in
-- the members set); any other becomes a foreign member (its whole data key, in
-- the foreign set). Under a lease, each object in KEYS gets the lease end as
-- its expiry (a StaticLifetime part's: its lease end plus the outage margin,
-- keysExpireAt), and so does its rules record; a missing object is still
-- recorded, it simply has nothing to expire. Objects in ARGV (foreign keys of
-- other slots, on Redis Cluster) are only recorded: the caller gave them that
-- expiry before this call, and gives them the returned one again if it
-- differs (see docs/lifetimes.md, "On Redis Cluster").
--
-- A lifetime never lengthens an object's life: an object that joins with an
-- expiry of its own (its ttl, the store's defaultTtl, or another lease's end)
-- keeps that expiry as its own end, recorded in the lifetime's `ends` set, and
-- gets the earlier of it and the lease end, now and at every extend. An
-- object with a rules record (reads: n) is recorded there too (score
-- 9999999999999 without an own end), so that extends and closes handle the
-- record with it. A key that is already a member keeps what it has.
--
-- An owned object in KEYS (one with an ownership record) joins as an owned
-- member (docs/lifetimes.md, "Owned objects in lifetimes"): it is recorded
-- in `ends` (score: its own end, the `until` its record already had, or
-- 9999999999999), its expiry is not set here; instead its owner is bound by
-- the lifetime (record fields lt and until, lifetimeBound: the lease end, or
-- its own end if earlier) and its keys settle as the ownership rules say.
-- An owned object already bound to another lifetime that has not ended it
-- is refused (one lifetime per owned object), before anything is written.
-- (Objects in ARGV live on other nodes: the caller bound the owned ones
-- there first, lua/memberExpire.lua.)
--
-- A static part notes the add (`seen`), and deals with a lease end that
-- passed as lifetimePut does (a fresh lease after a silence, else ended).
--
-- KEYS[1] meta        the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members     the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3] foreign     the lifetime's set of foreign members, <ns>:{<id>}:foreign
-- KEYS[4] ends        the lifetime's members with their own end or rules
--                     record (sorted set: member -> own end, Unix ms),
--                     <ns>:{<id>}:ends
-- KEYS[5...] objects  quadruples: an object's data key, its ownership record,
--                     its rules record and its leases (<ns>:{<tag>}:d:<key>,
--                     <ns>:{<tag>}:own:<key>, <ns>:{<tag>}:rules:<key>,
--                     <ns>:{<tag>}:lease:<key>); the
--                     objects recorded and, under a lease, expired here: own
--                     ones, and on a single Redis foreign ones too
-- ARGV[1...] elsewhere  pairs: a foreign data key in another slot (Redis
--                     Cluster), recorded as a string and not touched, and its
--                     own end as the caller found it (Unix ms;
--                     9999999999999: no own end but a rules record; 0: neither)
--
-- A resend of the same call (after a lost reply) adds nothing new: the sets
-- already hold the keys, and the expiry it gives is the lease end as it is
-- then (the same, unless an extend ran in between, whose end is the right one).
--
-- Returns: {added, expiresAtMs}  how many keys were not members yet (0 on a
--          resend); the expiry the members carry (the lease end; a static
--          part's plus its margin), or -1 without a lease
-- Errors:  PSR_LIFETIME_ENDED   the lifetime is closing, closed, or its lease ran out
--          PSR_ALREADY_OWNED    an owned object in KEYS is bound to another lifetime (nothing is added)
--          PSR_INVALID_OPTIONS  KEYS[2] to KEYS[4] are not the sets of KEYS[1];
--                               objects that are not quadruples of an object's
--                               data key, ownership and rules records and leases; a data
--                               key (in KEYS or ARGV) that is not the data key
--                               of an object of the lifetime's namespace; an
--                               own end that is not an integer from 0 to
--                               9999999999999
local rcall = redis.call
--@include nowMs
--@include shown
--@include lifetimePrefix
--@include openLifetime
--@include isDataKey
--@include objectKey
--@include intArg
--@include setTypeError
--@include ownedMember

local prefix = lifetimePrefix(KEYS[1], KEYS[2], KEYS[3])
if not prefix or KEYS[4] ~= prefix .. 'ends' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddKeys: ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[2]) .. ', ' ..
    shown(KEYS[3]) .. ' and ' .. shown(KEYS[4]) .. ' are not one lifetime')
end
local function notData(key)
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddKeys: ' .. shown(key) .. ' is not the data key of an object of this namespace')
end
if (#KEYS - 4) % 4 ~= 0 then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddKeys: objects must be quadruples of a data key, its ownership record, its rules record and its leases, got ' ..
    (#KEYS - 4) .. ' keys')
end
for i = 5, #KEYS, 4 do
  if not isDataKey(prefix, KEYS[i]) then return notData(KEYS[i]) end
  for j, kind in ipairs({ 'own', 'rules', 'lease' }) do
    if KEYS[i + j] ~= objectKey(KEYS[i], kind) then
      return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddKeys: ' .. shown(KEYS[i + j]) .. ' is not the ' .. (kind == 'own' and 'ownership record' or kind == 'lease' and 'leases' or 'rules record') .. ' of ' ..
        shown(KEYS[i]) .. ' (expected ' .. shown(objectKey(KEYS[i], kind)) .. ')')
    end
  end
end
if #ARGV % 2 ~= 0 then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddKeys: elsewhere must be pairs of a data key and its own end, got ' .. #ARGV .. ' values')
end
local elsewhereEnds = {}
for i = 1, #ARGV, 2 do
  if not isDataKey(prefix, ARGV[i]) then return notData(ARGV[i]) end
  local ownEnd, endErr = intArg('lifetimeAddKeys', 'own end of ' .. shown(ARGV[i]), ARGV[i + 1], 0, 9999999999999)
  if not ownEnd then return endErr end
  elsewhereEnds[#elsewhereEnds + 1] = ownEnd
end

local now = nowMs()
local open, err = openLifetime('lifetimeAddKeys', KEYS[1], now)
if not open then return err end

local lt = string.match(KEYS[1], '{(.-)}')
local owned = {}
for i = 5, #KEYS, 4 do
  local f = rcall('HMGET', KEYS[i + 1], 'owner', 'lt', 'ended', 'until')
  -- (An owner whose bound passed has ended: the next script on it says so.)
  local over = tonumber(f[4]) and tonumber(f[4]) <= now
  if f[1] and not f[3] and not over then
    if f[2] and f[2] ~= lt then
      -- The store key, as the application wrote it (src/keys.ts percent-encodes braces and '%').
      local key = string.match(KEYS[i], '^[^{}]+:{[^{}]+}:d:(.*)$')
      key = string.gsub(string.gsub(string.gsub(key, '%%7B', '{'), '%%7D', '}'), '%%25', '%%')
      return redis.error_reply('PSR_ALREADY_OWNED lifetime ' .. lt .. ': key ' .. shown(key) ..
        ' is owned and bound to lifetime ' .. f[2] .. ' already: an owned object belongs to one lifetime at a time')
    end
    owned[i] = true
  end
end

local endsErr = setTypeError('lifetimeAddKeys', KEYS[4], 'ZCARD')
if endsErr then return endsErr end

local at = touchLifetime(KEYS[1], open, now)
local own = prefix .. 'd:'
local added = 0
local recorded = false
for i = 5, #KEYS, 4 do
  local data, rules = KEYS[i], KEYS[i + 2]
  local member, set = data, KEYS[3]
  if string.sub(data, 1, #own) == own then member, set = string.sub(data, #own + 1), KEYS[2] end
  local new = rcall('SADD', set, member)
  added = added + new
  local hasRules = rcall('EXISTS', rules) == 1
  local ownEnd = tonumber(rcall('ZSCORE', KEYS[4], member))
  if owned[i] then
    -- Its own end is the bound its record already had (its expiry is its owner's, not an own end).
    if not ownEnd then
      ownEnd = tonumber(rcall('HGET', KEYS[i + 1], 'until')) or 9999999999999
      rcall('ZADD', KEYS[4], 'NX', ownEnd, member)
      recorded = true
    end
    local t = at
    if t and ownEnd < t then t = ownEnd end
    bindOwned(data, t, lt, now)
  elseif new == 1 then
    -- Its expiry as it joins is its own end (a lifetime never lengthens an object's life).
    local expiry = rcall('PEXPIRETIME', data)
    if expiry > 0 and at then ownEnd = expiry end
    if not ownEnd and hasRules then ownEnd = 9999999999999 end
    if ownEnd then
      rcall('ZADD', KEYS[4], 'NX', ownEnd, member)
      recorded = true
    end
  end
  if at and not owned[i] then
    local t = at
    if ownEnd and ownEnd < t then t = ownEnd end
    rcall('PEXPIREAT', data, t)
    if hasRules then rcall('PEXPIREAT', rules, t) end
  end
end
for i = 1, #ARGV, 2 do
  local new = rcall('SADD', KEYS[3], ARGV[i])
  added = added + new
  local ownEnd = elsewhereEnds[(i + 1) / 2]
  if new == 1 and ownEnd > 0 and (at or ownEnd == 9999999999999) then
    rcall('ZADD', KEYS[4], 'NX', ownEnd, ARGV[i])
    recorded = true
  end
end
if at then
  rcall('PEXPIREAT', KEYS[2], at)
  rcall('PEXPIREAT', KEYS[3], at)
  if recorded or rcall('EXISTS', KEYS[4]) == 1 then rcall('PEXPIREAT', KEYS[4], at) end
end
return {added, at or -1}
