-- futureSet: give a future its result. The value (with its rules record for
-- reads: n, its ttl, its lifetime's expiry) and the wake-up signal are
-- written together, or nothing is: a waiter blocked on the signal stream
-- (XREAD BLOCK, src/future/pool.ts) wakes with the value already there, and
-- one that starts later finds the entry and returns at once, so no wake-up
-- is ever lost.
--
-- A future has one result: a second set, from any process, is refused and
-- changes nothing. The signal entry records the setter's per-call token, so
-- the same call sent again (after a lost reply) recognises its own entry
-- and answers 1 again; any other token gets PSR_FUTURE_ALREADY_SET. The
-- signal expires after signalTtlMs (it outlives the wake-up it serves); after
-- that a future still counts as set while its value or its consume
-- tombstone exists.
--
-- A future made under a lifetime has a key inside the lifetime's hash tag
-- (<id>~<random>) and is listed in the lifetime's `futures` set: the set
-- writes the value as a member (the lease's expiry, its own ttl capped by
-- it, recorded in `ends` with its rules record), as lifetimePut does. A
-- lifetime that ended refuses the set (PSR_LIFETIME_ENDED); its close wrote
-- the signal 'ended' for the futures it found unset, and unlinked the
-- signal of those it evicted with their value (lifetimeClose.lua).
--
-- The signal never outlives the value by its expiry: it expires at the
-- value's expiry when that comes before signalTtlMs (a small value copied
-- into the entry must not be served after the value is gone).
--
-- KEYS[1] data       the future's data key, <ns>:{<tag>}:d:<key>
-- KEYS[2] rules      its rules record, <ns>:{<tag>}:rules:<key> (written for reads >= 2)
-- KEYS[3] tombstone  its consume tombstone, <ns>:{<tag>}:tomb:<key> (read only)
-- KEYS[4] signal     its signal stream, <ns>:{<tag>}:sig:<key>
-- KEYS[5] meta       the meta hash of the lifetime whose id is <tag>, <ns>:{<tag>}:lt
--                    (read only when the key is a lifetime's, <id>~<random>)
-- KEYS[6] members    that lifetime's own members, <ns>:{<tag>}:members
-- KEYS[7] futures    that lifetime's futures, <ns>:{<tag>}:futures (its type is checked)
-- KEYS[8] ends       that lifetime's members with an own end or rules record, <ns>:{<tag>}:ends
-- KEYS[9] stage      KEYS[1] itself for a value sent in ARGV[1]; for a chunked
--                    value, the staging hash its chunks were written to,
--                    <ns>:{<tag>}:stage:<key>:<write id> (includes/writeData.lua)
-- ARGV[1] value      the result's bytes, or a chunked value's manifest
-- ARGV[2] reads      consuming reads the result allows: 1 (no rules record) or 2 to 1000000000
-- ARGV[3] ttlMs      milliseconds from now until the result expires (1 to 9999999999999), 0 for none
-- ARGV[4] signalTtlMs how long the signal stream lives (1 to 9999999999999)
-- ARGV[5] token      this call's token (16 to 64 characters A-Z a-z 0-9 _ -)
-- ARGV[6] inline     1: copy the value into the signal entry too (a small result
--                    that is not consumed: a waiter that wakes needs no GET); 0: not
--
-- Returns: 1 (set now, or by an earlier run of this very call)
-- Errors:  PSR_FUTURE_ALREADY_SET  the future has a result (another call set it)
--          PSR_LIFETIME_ENDED      the future's lifetime is closing, closed or ran out
--          PSR_INVALID_OPTIONS     KEYS that are not one future's keys; bad reads,
--                                  ttlMs, signalTtlMs or token
--          PSR_SERIALIZATION       the signal stream key holds another Redis type
--          PSR_REDIS_OPERATION     a chunked value's staging hash is gone (expired)
local rcall = redis.call
--@include nowMs
--@include intArg
--@include tokenArg
--@include shown
--@include openLifetime
--@include setTypeError
--@include writeData

local prefix, member = string.match(KEYS[1], '^([^{}]+:{[^{}]+}:)d:([^{}]+)$')
if not prefix or KEYS[2] ~= prefix .. 'rules:' .. member or KEYS[3] ~= prefix .. 'tomb:' .. member
    or KEYS[4] ~= prefix .. 'sig:' .. member or KEYS[5] ~= prefix .. 'lt' or KEYS[6] ~= prefix .. 'members'
    or KEYS[7] ~= prefix .. 'futures' or KEYS[8] ~= prefix .. 'ends' then
  return redis.error_reply('PSR_INVALID_OPTIONS futureSet: KEYS ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[4]) ..
    ', ... are not the data, rules, tombstone, signal, meta, members, futures and ends keys of one future')
end
local reads, err1 = intArg('futureSet', 'reads', ARGV[2], 1, 1000000000)
if not reads then return err1 end
local ttl, err2 = intArg('futureSet', 'ttlMs', ARGV[3], 0, 9999999999999)
if not ttl then return err2 end
local signalTtl, err3 = intArg('futureSet', 'signalTtlMs', ARGV[4], 1, 9999999999999)
if not signalTtl then return err3 end
local token, err4 = tokenArg('futureSet', 'token', ARGV[5])
if not token then return err4 end
if ARGV[6] ~= '0' and ARGV[6] ~= '1' then
  return redis.error_reply('PSR_INVALID_OPTIONS futureSet: inline must be 0 or 1, got ' .. shown(ARGV[6]))
end
if ARGV[6] == '1' and KEYS[9] ~= KEYS[1] then
  return redis.error_reply('PSR_INVALID_OPTIONS futureSet: inline is for small results, not a chunked one')
end
if ARGV[6] == '1' and reads > 1 then
  return redis.error_reply('PSR_INVALID_OPTIONS futureSet: inline is for results that are not consumed, got reads ' .. reads)
end

-- Anything there already (the usual answer is no: one EXISTS)?
if rcall('EXISTS', KEYS[4], KEYS[1], KEYS[3]) > 0 then
  local entries = redis.pcall('XRANGE', KEYS[4], '-', '+', 'COUNT', 1)
  if type(entries) == 'table' and entries.err then
    if not string.find(entries.err, 'WRONGTYPE', 1, true) then return entries end
    return redis.error_reply('PSR_SERIALIZATION futureSet: Redis key ' .. shown(KEYS[4]) ..
      ' holds a value of another Redis type, not a signal written by proxystore-redis')
  end
  if #entries > 0 then
    local fields = entries[1][2]
    local state, by = nil, nil
    for i = 1, #fields, 2 do
      if fields[i] == 's' then state = fields[i + 1] elseif fields[i] == 't' then by = fields[i + 1] end
    end
    if state == 'set' and by == token then return 1 end
    if state == 'ended' then
      return redis.error_reply('PSR_LIFETIME_ENDED future ' .. shown(member) ..
        ' belongs to a lifetime that ended before it was set: it takes no result; use a new future')
    end
    local setAt = tonumber(string.match(entries[1][1], '^(%d+)'))
    return redis.error_reply('PSR_FUTURE_ALREADY_SET future ' .. shown(member) .. ' already has its result (set ' ..
      string.format('%.1f', (nowMs() - (setAt or nowMs())) / 1000) .. ' s ago by another call): a future is set once')
  end
  return redis.error_reply('PSR_FUTURE_ALREADY_SET future ' .. shown(member) .. ' already has its result: a future is set once')
end

local inLifetime = string.find(member, '~', 1, true) ~= nil
-- The server clock, only when an expiry needs it.
local now = (ttl > 0 or inLifetime) and nowMs()
if ttl > 0 and now + ttl > 9999999999999 then
  return redis.error_reply('PSR_INVALID_OPTIONS futureSet: ttlMs ' .. ttl .. ' would end after 9999999999999 (Unix ms, the year 2286)')
end
local ownEnd = ttl > 0 and now + ttl
local state, stageErr = stagedData('futureSet', KEYS[1], KEYS[9], ARGV[1])
if not state then return stageErr end
local at
if inLifetime then
  local open, err = openLifetime('futureSet', KEYS[5], now)
  if not open then return err end
  for _, probe in ipairs({ { KEYS[6], 'SCARD' }, { KEYS[7], 'SCARD' }, { KEYS[8], 'ZCARD' } }) do
    local typeErr = setTypeError('futureSet', probe[1], probe[2])
    if typeErr then return typeErr end
  end
  at = touchLifetime(KEYS[5], open, now)
end

local objectAt = at
if ownEnd and (not at or ownEnd < at) then objectAt = ownEnd end
if objectAt then
  writeData(KEYS[1], KEYS[9], ARGV[1], state, 'pxat', objectAt)
else
  writeData(KEYS[1], KEYS[9], ARGV[1], state, 'none', 0)
end
if reads > 1 then
  rcall('DEL', KEYS[2])
  rcall('HSET', KEYS[2], 'reads', reads, 'of', reads)
  if objectAt then rcall('PEXPIREAT', KEYS[2], objectAt) end
end
if inLifetime then
  rcall('SADD', KEYS[6], member)
  if ownEnd or reads > 1 then rcall('ZADD', KEYS[8], ownEnd or 9999999999999, member) end
  if at then
    rcall('PEXPIREAT', KEYS[6], at)
    if ownEnd or reads > 1 then rcall('PEXPIREAT', KEYS[8], at) end
  end
end
if ARGV[6] == '1' then
  rcall('XADD', KEYS[4], '*', 's', 'set', 't', token, 'v', ARGV[1])
else
  rcall('XADD', KEYS[4], '*', 's', 'set', 't', token)
end
if objectAt and objectAt < now + signalTtl then
  -- (objectAt implies a ttl or a lease: `now` is known.)
  rcall('PEXPIREAT', KEYS[4], objectAt)
else
  rcall('PEXPIRE', KEYS[4], signalTtl)
end
return 1
