-- lifetimeAddKeys: make existing objects members of an open lifetime. A data
-- key inside the lifetime's hash tag becomes an own member (its store key, in
-- the members set); any other becomes a foreign member (its whole data key, in
-- the foreign set). Under a lease, each object in KEYS gets the lease end as
-- its expiry (a missing object is still recorded; it simply has nothing to
-- expire). Objects in ARGV (foreign keys of other slots, on Redis Cluster) are
-- only recorded: the caller gave them the lease end before this call, and
-- gives them the returned one again if it differs (see docs/lifetimes.md, "On
-- Redis Cluster").
--
-- KEYS[1] meta        the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members     the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3] foreign     the lifetime's set of foreign members, <ns>:{<id>}:foreign
-- KEYS[4...] data     data keys recorded and, under a lease, expired here: own
--                     ones, and on a single Redis foreign ones too
-- ARGV[1...] elsewhere  foreign data keys in other slots (Redis Cluster),
--                     recorded as strings and not touched
--
-- A resend of the same call (after a lost reply) adds nothing new: the sets
-- already hold the keys, and the expiry it gives is the lease end as it is
-- then (the same, unless an extend ran in between, whose end is the right one).
--
-- Returns: {added, expiresAtMs}  how many keys were not members yet (0 on a
--          resend); the lease end, or -1 without a lease
-- Errors:  PSR_LIFETIME_ENDED   the lifetime is closing, closed, or its lease ran out
--          PSR_INVALID_OPTIONS  KEYS[2] and KEYS[3] are not the sets of KEYS[1];
--                               a data key (in KEYS or ARGV) that is not the data
--                               key of an object of the lifetime's namespace
local rcall = redis.call
--@include nowMs
--@include shown
--@include lifetimePrefix
--@include lifetimeEnded
--@include metaFields
--@include isDataKey

local prefix = lifetimePrefix(KEYS[1], KEYS[2], KEYS[3])
if not prefix then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddKeys: ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[2]) .. ' and ' ..
    shown(KEYS[3]) .. ' are not one lifetime')
end
local function notData(key)
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeAddKeys: ' .. shown(key) .. ' is not the data key of an object of this namespace')
end
for i = 4, #KEYS do
  if not isDataKey(prefix, KEYS[i]) then return notData(KEYS[i]) end
end
for i = 1, #ARGV do
  if not isDataKey(prefix, ARGV[i]) then return notData(ARGV[i]) end
end

local meta, err = metaFields('lifetimeAddKeys', KEYS[1], 'state', 'expiresAt')
if not meta then return err end
if meta[1] ~= 'open' then return lifetimeEnded(KEYS[1], meta[1], nowMs()) end
local expiresAt = tonumber(meta[2])

local own = prefix .. 'd:'
local added = 0
for i = 4, #KEYS do
  local data = KEYS[i]
  if string.sub(data, 1, #own) == own then
    added = added + rcall('SADD', KEYS[2], string.sub(data, #own + 1))
  else
    added = added + rcall('SADD', KEYS[3], data)
  end
  if expiresAt then rcall('PEXPIREAT', data, expiresAt) end
end
for i = 1, #ARGV, 1000 do
  added = added + rcall('SADD', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if expiresAt then
  rcall('PEXPIREAT', KEYS[2], expiresAt)
  rcall('PEXPIREAT', KEYS[3], expiresAt)
end
return {added, expiresAt or -1}
