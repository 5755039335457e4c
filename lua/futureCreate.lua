-- futureCreate: make a new future a member of an open lifetime before it has
-- a value: its key (<id>~<random>, inside the lifetime's hash tag) joins the
-- own members and the lifetime's `futures` set. A close writes the signal
-- 'ended' of those it finds without a result (lifetimeClose.lua), so their
-- waiters wake with LifetimeEndedError, and unlinks the signal of the others
-- with their value.
-- Under a lease both sets carry the lease's expiry (a StaticLifetime part's:
-- its lease end plus the outage margin, keysExpireAt), as lifetimePut gives
-- them; a static part notes the call (`seen`) and, like lifetimePut, renews a
-- lease that lapsed during a silence (staticLapse).
--
-- Running it twice adds nothing more (SADD), so a resend is safe.
--
-- KEYS[1] meta     the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members  the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3] futures  the lifetime's futures, <ns>:{<id>}:futures
-- ARGV[1] member   the future's store key, <id>~<random>
--
-- Returns: 1
-- Errors:  PSR_LIFETIME_ENDED   the lifetime is closing, closed, or its lease ran out
--          PSR_INVALID_OPTIONS  keys of different lifetimes, a member outside the
--                               lifetime, a key of another Redis type
local rcall = redis.call
--@include nowMs
--@include lifetimePrefix
--@include openLifetime
--@include setTypeError

local prefix = lifetimePrefix(KEYS[1], KEYS[2])
if not prefix or KEYS[3] ~= prefix .. 'futures' then
  return redis.error_reply('PSR_INVALID_OPTIONS futureCreate: ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[2]) .. ' and ' ..
    shown(KEYS[3]) .. ' are not one lifetime')
end
local id = string.match(KEYS[1], '{([%w_%-]+)}:lt$')
if type(ARGV[1]) ~= 'string' or not string.match(ARGV[1], '^[%w_%-]+~[%w_%-]+$') or string.sub(ARGV[1], 1, #id + 1) ~= id .. '~' then
  return redis.error_reply('PSR_INVALID_OPTIONS futureCreate: member ' .. shown(ARGV[1]) .. ' is not a key of lifetime ' .. shown(id) ..
    ' (<id>~<random>)')
end
local now = nowMs()
local open, err = openLifetime('futureCreate', KEYS[1], now)
if not open then return err end
for _, set in ipairs({ KEYS[2], KEYS[3] }) do
  local typeErr = setTypeError('futureCreate', set, 'SCARD')
  if typeErr then return typeErr end
end
local at = touchLifetime(KEYS[1], open, now)
rcall('SADD', KEYS[2], ARGV[1])
rcall('SADD', KEYS[3], ARGV[1])
if at then
  rcall('PEXPIREAT', KEYS[2], at)
  rcall('PEXPIREAT', KEYS[3], at)
end
return 1
