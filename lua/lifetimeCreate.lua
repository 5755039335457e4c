-- lifetimeCreate: create a lifetime's meta record. A lease's meta carries the
-- lease end as its Redis TTL, so it vanishes then even if every client is gone.
--
-- KEYS[1] meta    the lifetime's meta hash, <ns>:{<id>}:lt
-- ARGV[1] kind    context | lease | static
-- ARGV[2] name    a name for humans ('' for none)
-- ARGV[3] expiry  none | in | at
-- ARGV[4] ms      for 'in': milliseconds from now (server clock);
--                 for 'at': a Unix time in milliseconds; ignored for 'none'
--
-- Returns: {created, expiresAtMs}  created is 1, or 0 when the lease is already
--                                  over (nothing is created: the lifetime is born
--                                  ended); expiresAtMs is -1 without a lease
-- Errors:  PSR_INVALID_OPTIONS  a lifetime with this id exists; bad kind, expiry or ms
local rcall = redis.call
--@include nowMs

local kind, name, expiry = ARGV[1], ARGV[2], ARGV[3]
if kind ~= 'context' and kind ~= 'lease' and kind ~= 'static' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeCreate: unknown kind ' .. tostring(kind))
end
if rcall('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetime key ' .. KEYS[1] .. ' already exists: lifetime ids must be fresh')
end

local now = nowMs()
local fields = {'state', 'open', 'kind', kind, 'name', name, 'createdAt', now}
if expiry == 'none' then
  rcall('HSET', KEYS[1], unpack(fields))
  return {1, -1}
end

local ms = tonumber(ARGV[4])
if not ms or ms ~= math.floor(ms) then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeCreate: ms must be an integer, got ' .. tostring(ARGV[4]))
end
local expiresAt
if expiry == 'in' then
  expiresAt = now + ms
elseif expiry == 'at' then
  expiresAt = ms
else
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeCreate: expiry must be none, in or at, got ' .. tostring(expiry))
end
if expiresAt <= now then return {0, expiresAt} end
table.insert(fields, 'expiresAt')
table.insert(fields, expiresAt)
rcall('HSET', KEYS[1], unpack(fields))
rcall('PEXPIREAT', KEYS[1], expiresAt)
return {1, expiresAt}
