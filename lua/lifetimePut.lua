-- lifetimePut: write new objects as members of an open lifetime, in one step:
-- the data and the membership change together, or not at all. Under a lease,
-- each object and the members set get the lease end as their expiry.
--
-- A resend of the same call (after a lost reply) writes the same bytes under
-- the same keys again, with the same expiry: it changes nothing more. (Keys
-- are random per call, so no other call writes them.)
--
-- KEYS[1] meta      the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members   the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3...] data   the new objects' data keys, <ns>:{<id>}:d:<id>~<random>
--                   (inside the lifetime's hash tag)
-- ARGV[1...] values the objects' bytes, one per data key
--
-- Returns: the number of objects written
-- Errors:  PSR_LIFETIME_ENDED   the lifetime is closing, closed, or its lease ran out
--          PSR_INVALID_OPTIONS  keys of different lifetimes, a data key outside
--                               the lifetime, or not as many values as keys
local rcall = redis.call
--@include nowMs
--@include shown
--@include lifetimePrefix
--@include lifetimeEnded
--@include metaFields

local prefix = lifetimePrefix(KEYS[1], KEYS[2], nil)
if not prefix then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimePut: ' .. shown(KEYS[1]) .. ' and ' .. shown(KEYS[2]) .. ' are not one lifetime')
end
local n = #KEYS - 2
if n ~= #ARGV then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimePut: ' .. n .. ' data keys but ' .. #ARGV .. ' values')
end
local own = prefix .. 'd:'
local members = {}
for i = 1, n do
  local data = KEYS[i + 2]
  local member = string.sub(data, #own + 1)
  if string.sub(data, 1, #own) ~= own or not string.match(member, '^[^{}]+$') then
    return redis.error_reply('PSR_INVALID_OPTIONS lifetimePut: data key ' .. shown(data) .. ' is not inside lifetime ' .. shown(KEYS[1]))
  end
  members[i] = member
end

local meta, err = metaFields('lifetimePut', KEYS[1], 'state', 'expiresAt')
if not meta then return err end
if meta[1] ~= 'open' then return lifetimeEnded(KEYS[1], meta[1], nowMs()) end
local expiresAt = tonumber(meta[2])

for i = 1, n do
  if expiresAt then
    rcall('SET', KEYS[i + 2], ARGV[i], 'PXAT', expiresAt)
  else
    rcall('SET', KEYS[i + 2], ARGV[i])
  end
end
for i = 1, n, 1000 do
  rcall('SADD', KEYS[2], unpack(members, i, math.min(i + 999, n)))
end
if expiresAt then rcall('PEXPIREAT', KEYS[2], expiresAt) end
return n
