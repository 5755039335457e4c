-- lifetimeCreate: create a lifetime's meta record. A lease's meta carries the
-- lease end as its Redis TTL, so it vanishes then even if every client is gone.
-- A StaticLifetime part (kind static) records its lease length (`lease`) and
-- when it was last touched (`seen`), and its keys expire 2 x lease after the
-- lease end (the outage margin: see keysExpireAt and staticLapse).
--
-- The creating call's token is kept in the meta (createToken), so that the
-- same call sent again after a lost reply recognises the lifetime it made and
-- answers as the first time, instead of "already exists".
--
-- KEYS[1] meta    the lifetime's meta hash, <ns>:{<id>}:lt
-- ARGV[1] kind    context | lease | static
-- ARGV[2] name    a name for humans ('' for none), at most 1024 bytes
-- ARGV[3] expiry  none | in | at
-- ARGV[4] ms      for 'in': milliseconds from now (server clock);
--                 for 'at': a Unix time in milliseconds; 0 for 'none';
--                 an integer of at most 13 digits (the lease end must come
--                 before 9999999999999, in the year 2286); a static part
--                 takes 'in' with its lease length (1 to 2592000000, 30 days)
-- ARGV[5] token   this creation call's token
--
-- Returns: {created, expiresAtMs}  created is 1, or 0 when the lease is already
--                                  over (nothing is created: the lifetime is born
--                                  ended); expiresAtMs is -1 without a lease
-- Errors:  PSR_INVALID_OPTIONS  a lifetime with this id exists (made by another
--                               call); bad kind, name, expiry, ms or token; a
--                               static part without an 'in' lease of 1 ms to
--                               30 days; a meta key that is not a lifetime's
local rcall = redis.call
--@include nowMs
--@include intArg
--@include tokenArg
--@include keysExpireAt

local kind, name, expiry = ARGV[1], ARGV[2], ARGV[3]
if kind ~= 'context' and kind ~= 'lease' and kind ~= 'static' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeCreate: kind must be context, lease or static, got ' .. shown(kind))
end
if expiry ~= 'none' and expiry ~= 'in' and expiry ~= 'at' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeCreate: expiry must be none, in or at, got ' .. shown(expiry))
end
if #name > 1024 then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeCreate: name must be at most 1024 bytes, got ' .. #name)
end
local ms, err = intArg('lifetimeCreate', 'ms', ARGV[4], -9999999999999, 9999999999999)
if not ms then return err end
local token, err2 = tokenArg('lifetimeCreate', 'token', ARGV[5])
if not token then return err2 end
if kind == 'static' and (expiry ~= 'in' or ms < 1 or ms > 2592000000) then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeCreate: a static part takes its lease length as expiry in, ' ..
    '1 to 2592000000 ms (30 days), got ' .. shown(expiry) .. ' ' .. shown(ARGV[4]))
end
if not string.match(KEYS[1], '^[^{}]+:{[%w_%-]+}:lt$') then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeCreate: ' .. shown(KEYS[1]) .. ' is not a lifetime meta key (<ns>:{<id>}:lt)')
end

local existing = redis.pcall('HMGET', KEYS[1], 'createToken', 'expiresAt')
if type(existing) == 'table' and existing.err then
  if not string.find(existing.err, 'WRONGTYPE', 1, true) then return existing end
  return redis.error_reply('PSR_INVALID_OPTIONS lifetime key ' .. shown(KEYS[1]) .. ' holds another Redis type: it is not a lifetime')
end
if rcall('EXISTS', KEYS[1]) == 1 then
  if existing[1] == token then
    -- This very call, sent again: its first run created the lifetime.
    return {1, tonumber(existing[2]) or -1}
  end
  return redis.error_reply('PSR_INVALID_OPTIONS lifetime key ' .. shown(KEYS[1]) .. ' already exists: lifetime ids must be fresh')
end

local now = nowMs()
local fields = {'state', 'open', 'kind', kind, 'name', name, 'createdAt', now, 'createToken', token}
if expiry == 'none' then
  rcall('HSET', KEYS[1], unpack(fields))
  return {1, -1}
end

local expiresAt = ms
if expiry == 'in' then expiresAt = now + ms end
if expiresAt <= now then return {0, expiresAt} end
if expiresAt > 9999999999999 then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeCreate: the lease would end after 9999999999999 (Unix ms, the year 2286)')
end
table.insert(fields, 'expiresAt')
table.insert(fields, expiresAt)
local lease = nil
if kind == 'static' then
  lease = ms
  for _, v in ipairs({'lease', lease, 'seen', now}) do table.insert(fields, v) end
end
rcall('HSET', KEYS[1], unpack(fields))
rcall('PEXPIREAT', KEYS[1], keysExpireAt(expiresAt, lease))
return {1, expiresAt}
