-- lifetimePut: write new objects as members of an open lifetime, in one step:
-- the data and the membership change together, or not at all. Under a lease,
-- each object and the members set get the lease end as their expiry (a
-- StaticLifetime part's: its lease end plus the outage margin, keysExpireAt).
--
-- A static part notes the put (`seen`). One whose lease end passed gets a
-- fresh lease first if nothing touched it for more than lease / 2 (an outage
-- or a stall: staticLapse), and is refused as ended otherwise (its heartbeat
-- stopped while puts went on).
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
--                               (nothing is written)
--          PSR_INVALID_OPTIONS  keys of different lifetimes, a data key outside
--                               the lifetime, or not as many values as keys
local rcall = redis.call
--@include nowMs
--@include shown
--@include lifetimePrefix
--@include lifetimeEnded
--@include metaFields
--@include staticLease
--@include staticLapse
--@include keysExpireAt

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

local meta, err = metaFields('lifetimePut', KEYS[1], 'state', 'expiresAt', 'kind', 'lease', 'seen')
if not meta then return err end
local now = nowMs()
if meta[1] ~= 'open' then return lifetimeEnded(KEYS[1], meta[1], now) end
local expiresAt = tonumber(meta[2])
local lease = expiresAt and staticLease(meta[3], meta[4])
local lapse = lease and staticLapse(expiresAt, lease, meta[5], now)
if lapse == 'ended' then return lifetimeEnded(KEYS[1], false, now) end

if lapse == 'grace' then
  expiresAt = now + lease
  rcall('HSET', KEYS[1], 'expiresAt', expiresAt)
  rcall('PEXPIREAT', KEYS[1], keysExpireAt(expiresAt, lease))
end
if lease then rcall('HSET', KEYS[1], 'seen', now) end
local at = expiresAt and keysExpireAt(expiresAt, lease)
for i = 1, n do
  if at then
    rcall('SET', KEYS[i + 2], ARGV[i], 'PXAT', at)
  else
    rcall('SET', KEYS[i + 2], ARGV[i])
  end
end
for i = 1, n, 1000 do
  rcall('SADD', KEYS[2], unpack(members, i, math.min(i + 999, n)))
end
if at then rcall('PEXPIREAT', KEYS[2], at) end
return n
