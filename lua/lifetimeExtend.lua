-- lifetimeExtend: move the lease end of an open lease (LeaseLifetime, or a
-- StaticLifetime's heartbeat) and apply it to the meta, both member sets and
-- the first chunk of members. Later chunks: lifetimeExpireChunk with the
-- returned cursor. Objects added from now on get the new expiry. A new end
-- that is not in the future ends the lifetime: the meta turns 'closing' and
-- the caller must run lifetimeClose.
--
-- A StaticLifetime part's keys and members expire 2 x its lease after the
-- lease end (the outage margin, keysExpireAt), and each heartbeat notes the
-- time (`seen`). A heartbeat that finds the lease end passed gives the part a
-- fresh lease first when nothing touched it for more than lease / 2 (an
-- outage or a stall, see staticLapse), and otherwise ends it ('close'): its
-- heartbeat had stopped while puts went on. A LeaseLifetime's end is the
-- user's deadline: no margin, no grace.
--
-- The applied call's token and lease end are recorded in the meta (extend:
-- "<token> <expiresAtMs>"), so the same call sent again after a lost reply
-- does not move the lease a second time (an `add` would otherwise add twice,
-- an `in` count from the later time): it answers with the lease end as it is
-- and walks the first chunk again (the same expiry again: harmless), or, if
-- its first run ended the lifetime, answers 'close' again.
--
-- KEYS[1] meta     the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members  the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3] foreign  the lifetime's set of foreign members, <ns>:{<id>}:foreign
-- KEYS[4] ends     the lifetime's members with their own end or rules record
--                  (sorted set: member -> own end, Unix ms), <ns>:{<id>}:ends:
--                  each gets the earlier of the lease and its own end, and so
--                  does its rules record
-- KEYS[5] futures  the lifetime's futures without a result yet, <ns>:{<id>}:futures
--                  (gets the new expiry, as the member sets do)
-- KEYS[6] dedupe   the deduped objects the lifetime holds a reference on,
--                  <ns>:{<id>}:dedupe: only looked at (EXISTS), so that the
--                  caller moves those references (src/dedupe/lifetime.ts) only
--                  when there are any
-- ARGV[1] mode     add: to the current end; at: a Unix time; in: from now (server clock)
-- ARGV[2] ms       milliseconds (for 'at', a Unix time in milliseconds), an
--                  integer of at most 13 digits; the new end must come before
--                  9999999999999 (Unix ms, the year 2286)
-- ARGV[3] count    about how many members this call re-expires (1 to 1000000)
-- ARGV[4] foreign  touch: expire foreign members here (a single Redis);
--                  return: hand them to the caller, which expires them on
--                  their own nodes (Redis Cluster)
-- ARGV[5] token    this call's token
--
-- Derived keys: members' data keys and rules records, as in
-- lifetimeExpireChunk. The chunk's are read and checked (collectMembers,
-- memberEnds, checkLocal) before the first write, so a Redis Cluster slot in
-- migration stops the call before it changes anything ("Script attempted to
-- access a non local key"), never half-way: the caller sends the same call
-- (same token) again.
--
-- Returns: {expiresAtMs, cursor, found, capped, deduped}  the expiry members now carry
--          (the lease end; a static part's plus its margin), or with 'close'
--          the lease end that ended it; cursor is 'done' when every member
--          has the new expiry, 'close' when the lease is over (the caller
--          closes the lifetime), else a cursor for lifetimeExpireChunk; found
--          lists the foreign members of this chunk for the caller to expire;
--          capped, those with an own end, as {dataKey, ownEnd, ...}, for the
--          caller to expire (with their rules records) to the earlier of
--          expiresAtMs and their own end (both empty with 'touch'); deduped is 1
--          when the lifetime holds deduped objects (KEYS[6] exists; 0 with 'close')
-- Errors:  PSR_LIFETIME_ENDED   the lifetime is closing, closed, or its lease ran out
--          PSR_INVALID_OPTIONS  the lifetime has no lease; bad mode, ms, count,
--                               foreign or token; a lease end after the year 2286;
--                               keys of different lifetimes
local rcall = redis.call
--@include nowMs
--@include intArg
--@include tokenArg
--@include lifetimePrefix
--@include lifetimeEnded
--@include collectMembers
--@include memberEnds
--@include expireMembers
--@include foreignMode
--@include metaFields
--@include staticLease
--@include staticLapse
--@include keysExpireAt
--@include pruneEnds
--@include setTypeError

local prefix = lifetimePrefix(KEYS[1], KEYS[2], KEYS[3])
if not prefix or KEYS[4] ~= prefix .. 'ends' or KEYS[5] ~= prefix .. 'futures' or KEYS[6] ~= prefix .. 'dedupe' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExtend: ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[2]) .. ', ' ..
    shown(KEYS[3]) .. ', ' .. shown(KEYS[4]) .. ', ' .. shown(KEYS[5]) .. ' and ' .. shown(KEYS[6]) .. ' are not one lifetime')
end
local mode = ARGV[1]
if mode ~= 'add' and mode ~= 'at' and mode ~= 'in' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExtend: mode must be add, at or in, got ' .. shown(mode))
end
local ms, err = intArg('lifetimeExtend', 'ms', ARGV[2], -9999999999999, 9999999999999)
if not ms then return err end
local count, err2 = intArg('lifetimeExtend', 'count', ARGV[3], 1, 1000000)
if not count then return err2 end
local touch = foreignMode(ARGV[4])
if touch == nil then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExtend: foreign must be touch or return, got ' .. shown(ARGV[4]))
end
local token, err3 = tokenArg('lifetimeExtend', 'token', ARGV[5])
if not token then return err3 end

local endsErr = setTypeError('lifetimeExtend', KEYS[4], 'ZCARD')
if endsErr then return endsErr end
local now = nowMs()
local meta, err4 = metaFields('lifetimeExtend', KEYS[1], 'state', 'expiresAt', 'extend', 'kind', 'lease', 'seen')
if not meta then return err4 end
local lease = staticLease(meta[4], meta[5])

-- This very call, sent again: its first run moved the lease already.
local _, _, applied, appliedEnd = string.find(meta[3] or '', '^(%S+) (%-?%d+)$')
if applied == token then
  if meta[1] == 'open' and meta[2] then
    local at = keysExpireAt(tonumber(meta[2]), lease)
    local cursor, own, foreign = collectMembers(prefix, 'm:0', count)
    local found, capped = expireMembers(own, foreign, at, touch, memberEnds(prefix, own, foreign, touch, KEYS[4]))
    return {at, cursor, found, capped, rcall('EXISTS', KEYS[6])}
  end
  if meta[1] == 'closing' or meta[1] == 'ended' then return {tonumber(appliedEnd), 'close', {}, {}, 0} end
end

if meta[1] ~= 'open' then return lifetimeEnded(KEYS[1], meta[1], now) end
local current = tonumber(meta[2])
if not current then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetime ' .. string.match(KEYS[1], '{(.-)}') .. ' has no lease to extend')
end
local lapse = lease and staticLapse(current, lease, meta[6], now)
if lapse == 'ended' then
  -- The part's heartbeat stopped: it ends, as a lease that ran out (the caller closes it).
  rcall('HSET', KEYS[1], 'state', 'closing', 'closingAt', now, 'extend', token .. ' ' .. string.format('%d', current))
  return {current, 'close', {}, {}, 0}
end
if lapse == 'grace' then current = now + lease end

local expiresAt = ms
if mode == 'add' then
  expiresAt = current + ms
elseif mode == 'in' then
  expiresAt = now + ms
end
if expiresAt > 9999999999999 then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExtend: the lease of lifetime ' .. string.match(KEYS[1], '{(.-)}') ..
    ' would end after 9999999999999 (Unix ms, the year 2286)')
end

local record = token .. ' ' .. string.format('%d', expiresAt)
if expiresAt <= now then
  -- Expiring the keys now would drop the meta before the members are gone.
  rcall('HSET', KEYS[1], 'state', 'closing', 'closingAt', now, 'expiresAt', expiresAt, 'extend', record)
  return {expiresAt, 'close', {}, {}, 0}
end
-- Every read and check first: nothing below can fail.
local cursor, own, foreign = collectMembers(prefix, 'm:0', count)
local ends, owned = memberEnds(prefix, own, foreign, touch, KEYS[4])
rcall('HSET', KEYS[1], 'expiresAt', expiresAt, 'extend', record)
if lease then rcall('HSET', KEYS[1], 'seen', now) end
local at = keysExpireAt(expiresAt, lease)
rcall('PEXPIREAT', KEYS[1], at)
rcall('PEXPIREAT', KEYS[2], at)
rcall('PEXPIREAT', KEYS[3], at)
rcall('PEXPIREAT', KEYS[5], at)
if rcall('EXISTS', KEYS[4]) == 1 then
  rcall('PEXPIREAT', KEYS[4], at)
  -- Members whose own end passed are gone: forget a few each time.
  pruneEnds(KEYS[2], KEYS[3], KEYS[4], now, 1000)
end
local found, capped = expireMembers(own, foreign, at, touch, ends, owned)
return {at, cursor, found, capped, rcall('EXISTS', KEYS[6])}
