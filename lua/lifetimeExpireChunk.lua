-- lifetimeExpireChunk: give the next chunk of members the lifetime's current
-- lease end (the latest extend wins, even over an extend still walking its
-- chunks); a StaticLifetime part's members get its lease end plus the outage
-- margin (keysExpireAt), as lifetimeExtend gives them. Stops ('done', -1)
-- when the lifetime is no longer an open lease.
-- A resend of the same call (after a lost reply) gives the same members the
-- current lease end again: it changes nothing more.
--
-- KEYS[1] meta     the lifetime's meta hash, <ns>:{<id>}:lt
-- KEYS[2] members  the lifetime's set of own members, <ns>:{<id>}:members
-- KEYS[3] foreign  the lifetime's set of foreign members, <ns>:{<id>}:foreign
-- KEYS[4] ends     the lifetime's members with their own end or rules record
--                  (sorted set: member -> own end, Unix ms), <ns>:{<id>}:ends:
--                  each gets the earlier of the lease and its own end, and so
--                  does its rules record
-- ARGV[1] cursor   from lifetimeExtend or the previous call
-- ARGV[2] count    about how many members this call re-expires (1 to 1000000)
-- ARGV[3] foreign  touch: expire foreign members here (a single Redis);
--                  return: hand them to the caller (Redis Cluster)
--
-- Derived keys: own members' data keys, <ns>:{<id>}:d:<member>, and rules
-- records, <ns>:{<id>}:rules:<member>, share the lifetime's hash tag; with
-- foreign = 'touch', foreign members are whole data keys in other hash tags
-- (on one server), with their rules records beside them. The chunk's derived
-- keys are read and checked (collectMembers, memberEnds, checkLocal)
-- before the first write, so a Redis Cluster slot in migration stops the
-- call before it changes anything, never half-way.
--
-- Returns: {expiresAtMs, cursor, found, capped}  the expiry members now carry
--          (the current lease end; a static part's plus its margin; -1 when
--          the lifetime is no longer an open lease); the next cursor, or
--          'done'; the foreign members of this chunk for the caller to
--          expire; those with an own end, as {dataKey, ownEnd, ...}, for the
--          caller to expire (with their rules records) to the earlier of
--          expiresAtMs and their own end (both empty with 'touch')
-- Errors:  PSR_INVALID_OPTIONS  a malformed cursor, count or foreign; keys of different lifetimes
local rcall = redis.call
--@include intArg
--@include lifetimePrefix
--@include collectMembers
--@include memberEnds
--@include expireMembers
--@include foreignMode
--@include metaFields
--@include staticLease
--@include keysExpireAt
--@include setTypeError

local prefix = lifetimePrefix(KEYS[1], KEYS[2], KEYS[3])
if not prefix or KEYS[4] ~= prefix .. 'ends' then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExpireChunk: ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[2]) .. ', ' ..
    shown(KEYS[3]) .. ' and ' .. shown(KEYS[4]) .. ' are not one lifetime')
end
if not string.match(ARGV[1], '^[mf]:%d+$') or #ARGV[1] > 21 then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExpireChunk: malformed cursor ' .. shown(ARGV[1]))
end
local count, err = intArg('lifetimeExpireChunk', 'count', ARGV[2], 1, 1000000)
if not count then return err end
local touch = foreignMode(ARGV[3])
if touch == nil then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExpireChunk: foreign must be touch or return, got ' .. shown(ARGV[3]))
end

local endsErr = setTypeError('lifetimeExpireChunk', KEYS[4], 'ZCARD')
if endsErr then return endsErr end
local meta, err2 = metaFields('lifetimeExpireChunk', KEYS[1], 'state', 'expiresAt', 'kind', 'lease')
if not meta then return err2 end
local expiresAt = tonumber(meta[2])
if meta[1] ~= 'open' or not expiresAt then return {-1, 'done', {}, {}} end
local at = keysExpireAt(expiresAt, staticLease(meta[3], meta[4]))
local next, own, foreign = collectMembers(prefix, ARGV[1], count)
if not next then
  return redis.error_reply('PSR_INVALID_OPTIONS lifetimeExpireChunk: malformed cursor ' .. shown(ARGV[1]))
end
local found, capped = expireMembers(own, foreign, at, touch, memberEnds(prefix, own, foreign, touch, KEYS[4]))
return {at, next, found, capped}
