-- lifetimeClose: one bounded step of closing a lifetime. The first call marks
-- it 'closing' (from then on it takes no new objects); each call evicts up to
-- `count` members; the call that finds no member left turns the meta into an
-- 'ended' marker that expires after endedTtlMs (it only serves error
-- messages). Call it until `finished`. Calls from several processes at once
-- are fine (SPOP hands each member to one of them); closing an ended lifetime
-- is a no-op.
--
-- KEYS[1] meta        the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members     the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3] foreign     the lifetime's set of foreign members, <ns>:{<id>}:foreign
-- ARGV[1] count       the most members this call evicts
-- ARGV[2] endedTtlMs  how long the 'ended' marker lives, in milliseconds
--
-- Derived keys: own members' data keys, <ns>:{<id>}:d:<member>, share the
-- lifetime's hash tag; foreign members are whole data keys in other hash tags
-- (fine on a single Redis; Redis Cluster would need them grouped by slot).
--
-- Returns: {finished, evicted, before}  finished is 1 once nothing is left;
--          evicted counts the members this call evicted; before is the state
--          this call found: open | closing | ended | missing (Redis no longer
--          knows the lifetime: its lease ran out, or its marker expired)
-- Errors:  PSR_INVALID_OPTIONS  bad count or endedTtlMs; keys of different lifetimes
local rcall = redis.call
--@include nowMs
--@include lifetimePrefix

local prefix = lifetimePrefix(KEYS[1], KEYS[2], KEYS[3])
if not prefix then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeClose: ' .. KEYS[1] .. ', ' .. KEYS[2] .. ' and ' .. KEYS[3] .. ' are not one lifetime')
end
local count, endedTtl = tonumber(ARGV[1]), tonumber(ARGV[2])
if not count or count < 1 or count ~= math.floor(count) or not endedTtl or endedTtl < 1 or endedTtl ~= math.floor(endedTtl) then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeClose: count and endedTtlMs must be positive integers, got ' .. tostring(ARGV[1]) .. ', ' .. tostring(ARGV[2]))
end

local state = rcall('HGET', KEYS[1], 'state')
if state == 'ended' then return {1, 0, 'ended'} end
local now = nowMs()
if state == 'open' then rcall('HSET', KEYS[1], 'state', 'closing', 'closingAt', now) end

local function unlinkAll(keys)
  for i = 1, #keys, 1000 do
    rcall('UNLINK', unpack(keys, i, math.min(i + 999, #keys)))
  end
end

local evicted = 0
local own = rcall('SPOP', KEYS[2], count)
if #own > 0 then
  for i = 1, #own do own[i] = prefix .. 'd:' .. own[i] end
  unlinkAll(own)
  evicted = #own
end
if evicted < count then
  local foreign = rcall('SPOP', KEYS[3], count - evicted)
  if #foreign > 0 then
    unlinkAll(foreign)
    evicted = evicted + #foreign
  end
end

local before = state or 'missing'
if rcall('EXISTS', KEYS[2], KEYS[3]) > 0 then return {0, evicted, before} end
if state then
  rcall('HSET', KEYS[1], 'state', 'ended', 'endedAt', now)
  rcall('HDEL', KEYS[1], 'expiresAt')
  rcall('PEXPIRE', KEYS[1], endedTtl)
end
return {1, evicted, before}
