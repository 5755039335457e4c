-- lifetimeExtend: move the lease end of an open lease (LeaseLifetime, or a
-- StaticLifetime's heartbeat) and apply it to the meta, both member sets and
-- the first chunk of members. Later chunks: lifetimeExpireChunk with the
-- returned cursor. Objects added from now on get the new expiry. A new end
-- that is not in the future ends the lifetime: the meta turns 'closing' and
-- the caller must run lifetimeClose.
--
-- KEYS[1] meta     the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members  the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3] foreign  the lifetime's set of foreign members, <ns>:{<id>}:foreign
-- ARGV[1] mode     add: to the current end; at: a Unix time; in: from now (server clock)
-- ARGV[2] ms       milliseconds (for 'at', a Unix time in milliseconds)
-- ARGV[3] count    about how many members this call re-expires
-- ARGV[4] foreign  touch: expire foreign members here (a single Redis);
--                  return: hand them to the caller, which expires them on
--                  their own nodes (Redis Cluster)
--
-- Derived keys: members' data keys, as in lifetimeExpireChunk.
--
-- Returns: {expiresAtMs, cursor, found}  cursor is 'done' when every member
--          has the new expiry, 'close' when the lease is over (the caller
--          closes the lifetime), else a cursor for lifetimeExpireChunk; found
--          lists the foreign members of this chunk for the caller to expire
--          (empty with 'touch')
-- Errors:  PSR_LIFETIME_ENDED   the lifetime is closing, closed, or its lease ran out
--          PSR_INVALID_OPTIONS  the lifetime has no lease; bad mode, ms, count or foreign
local rcall = redis.call
--@include nowMs
--@include lifetimePrefix
--@include lifetimeEnded
--@include expireMembers
--@include foreignMode

local prefix = lifetimePrefix(KEYS[1], KEYS[2], KEYS[3])
if not prefix then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExtend: ' .. KEYS[1] .. ', ' .. KEYS[2] .. ' and ' .. KEYS[3] .. ' are not one lifetime')
end
local mode, ms, count = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if not ms or ms ~= math.floor(ms) or not count or count < 1 then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExtend: ms and count must be integers, got ' .. tostring(ARGV[2]) .. ', ' .. tostring(ARGV[3]))
end
local touch = foreignMode(ARGV[4])
if touch == nil then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExtend: foreign must be touch or return, got ' .. tostring(ARGV[4]))
end

local now = nowMs()
local meta = rcall('HMGET', KEYS[1], 'state', 'expiresAt')
if meta[1] ~= 'open' then return lifetimeEnded(KEYS[1], meta[1], now) end
local current = tonumber(meta[2])
if not current then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetime ' .. string.match(KEYS[1], '{(.-)}') .. ' has no lease to extend')
end

local expiresAt
if mode == 'add' then
  expiresAt = current + ms
elseif mode == 'at' then
  expiresAt = ms
elseif mode == 'in' then
  expiresAt = now + ms
else
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExtend: mode must be add, at or in, got ' .. tostring(mode))
end

if expiresAt <= now then
  -- Expiring the keys now would drop the meta before the members are gone.
  rcall('HSET', KEYS[1], 'state', 'closing', 'closingAt', now, 'expiresAt', expiresAt)
  return {expiresAt, 'close', {}}
end
rcall('HSET', KEYS[1], 'expiresAt', expiresAt)
rcall('PEXPIREAT', KEYS[1], expiresAt)
rcall('PEXPIREAT', KEYS[2], expiresAt)
rcall('PEXPIREAT', KEYS[3], expiresAt)
local cursor, found = expireMembers(prefix, 'm:0', count, expiresAt, touch)
return {expiresAt, cursor, found}
