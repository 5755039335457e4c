-- lifetimeAddKeys: make existing objects members of an open lifetime. A data
-- key inside the lifetime's hash tag becomes an own member (its store key, in
-- the members set); any other becomes a foreign member (its whole data key, in
-- the foreign set). Under a lease, each object in KEYS gets the lease end as
-- its expiry (a StaticLifetime part's: its lease end plus the outage margin,
-- keysExpireAt; a missing object is still recorded; it simply has nothing to
-- expire). Objects in ARGV (foreign keys of other slots, on Redis Cluster) are
-- only recorded: the caller gave them that expiry before this call, and gives
-- them the returned one again if it differs (see docs/lifetimes.md, "On Redis
-- Cluster").
--
-- Owned objects cannot join lifetimes yet: an object in KEYS that has an
-- ownership record is refused, atomically with the add, before anything is
-- written. (Objects in ARGV live on other nodes: the caller checked theirs.)
--
-- A static part notes the add (`seen`), and deals with a lease end that
-- passed as lifetimePut does (a fresh lease after a silence, else ended).
--
-- KEYS[1] meta        the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members     the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3] foreign     the lifetime's set of foreign members, <ns>:{<id>}:foreign
-- KEYS[4...] objects  pairs: an object's data key, then its ownership record
--                     (<ns>:{<tag>}:d:<key>, <ns>:{<tag>}:own:<key>); the
--                     objects recorded and, under a lease, expired here: own
--                     ones, and on a single Redis foreign ones too
-- ARGV[1...] elsewhere  foreign data keys in other slots (Redis Cluster),
--                     recorded as strings and not touched
--
-- A resend of the same call (after a lost reply) adds nothing new: the sets
-- already hold the keys, and the expiry it gives is the lease end as it is
-- then (the same, unless an extend ran in between, whose end is the right one).
--
-- Returns: {added, expiresAtMs}  how many keys were not members yet (0 on a
--          resend); the expiry the members carry (the lease end; a static
--          part's plus its margin), or -1 without a lease
-- Errors:  PSR_LIFETIME_ENDED   the lifetime is closing, closed, or its lease ran out
--          PSR_ALREADY_OWNED    an object in KEYS has an ownership record (nothing is added)
--          PSR_INVALID_OPTIONS  KEYS[2] and KEYS[3] are not the sets of KEYS[1];
--                               objects that are not pairs of an object's data
--                               key and ownership record; a data key (in KEYS
--                               or ARGV) that is not the data key of an object
--                               of the lifetime's namespace
local rcall = redis.call
--@include nowMs
--@include shown
--@include lifetimePrefix
--@include lifetimeEnded
--@include metaFields
--@include isDataKey
--@include objectKey
--@include staticLease
--@include staticLapse
--@include keysExpireAt

local prefix = lifetimePrefix(KEYS[1], KEYS[2], KEYS[3])
if not prefix then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddKeys: ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[2]) .. ' and ' ..
    shown(KEYS[3]) .. ' are not one lifetime')
end
local function notData(key)
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddKeys: ' .. shown(key) .. ' is not the data key of an object of this namespace')
end
if (#KEYS - 3) % 2 ~= 0 then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddKeys: objects must be pairs of a data key and its ownership record, got ' ..
    (#KEYS - 3) .. ' keys')
end
for i = 4, #KEYS, 2 do
  if not isDataKey(prefix, KEYS[i]) then return notData(KEYS[i]) end
  if KEYS[i + 1] ~= objectKey(KEYS[i], 'own') then
    return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddKeys: ' .. shown(KEYS[i + 1]) .. ' is not the ownership record of ' ..
      shown(KEYS[i]) .. ' (expected ' .. shown(objectKey(KEYS[i], 'own')) .. ')')
  end
end
for i = 1, #ARGV do
  if not isDataKey(prefix, ARGV[i]) then return notData(ARGV[i]) end
end

local meta, err = metaFields('lifetimeAddKeys', KEYS[1], 'state', 'expiresAt', 'kind', 'lease', 'seen')
if not meta then return err end
local now = nowMs()
if meta[1] ~= 'open' then return lifetimeEnded(KEYS[1], meta[1], now) end
local expiresAt = tonumber(meta[2])
local lease = expiresAt and staticLease(meta[3], meta[4])
local lapse = lease and staticLapse(expiresAt, lease, meta[5], now)
if lapse == 'ended' then return lifetimeEnded(KEYS[1], false, now) end

for i = 4, #KEYS, 2 do
  if rcall('EXISTS', KEYS[i + 1]) == 1 then
    -- The store key, as the application wrote it (src/keys.ts percent-encodes braces and '%').
    local key = string.match(KEYS[i], '^[^{}]+:{[^{}]+}:d:(.*)$')
    key = string.gsub(string.gsub(string.gsub(key, '%%7B', '{'), '%%7D', '}'), '%%25', '%%')
    return redis.error_reply('PSR_ALREADY_OWNED lifetime ' .. string.match(KEYS[1], '{(.-)}') .. ': key ' .. shown(key) ..
      ' has an owner (an OwnedProxy, or borrows of one): owned objects cannot join lifetimes yet (the lifetime and the owner ' ..
      'would each evict it on their own terms); give the lifetime a copy (store.proxy(value, { lifetime })), or leave the object to its owner')
  end
end

if lapse == 'grace' then
  expiresAt = now + lease
  rcall('HSET', KEYS[1], 'expiresAt', expiresAt)
  rcall('PEXPIREAT', KEYS[1], keysExpireAt(expiresAt, lease))
end
if lease then rcall('HSET', KEYS[1], 'seen', now) end
local at = expiresAt and keysExpireAt(expiresAt, lease)
local own = prefix .. 'd:'
local added = 0
for i = 4, #KEYS, 2 do
  local data = KEYS[i]
  if string.sub(data, 1, #own) == own then
    added = added + rcall('SADD', KEYS[2], string.sub(data, #own + 1))
  else
    added = added + rcall('SADD', KEYS[3], data)
  end
  if at then rcall('PEXPIREAT', data, at) end
end
for i = 1, #ARGV, 1000 do
  added = added + rcall('SADD', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if at then
  rcall('PEXPIREAT', KEYS[2], at)
  rcall('PEXPIREAT', KEYS[3], at)
end
return {added, at or -1}
