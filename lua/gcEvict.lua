-- gcEvict: evict one object that nothing holds (the command line's `gc`),
-- checking in the same step that this is still so: it has no ownership
-- record and no handle lease, it is not an own member of the lifetime whose
-- id is its hash tag, it has no expiry of its own (an object with a TTL, from
-- its ttl or the store's defaultTtl, goes by itself: gc leaves it alone), it
-- holds bytes (a Redis string, or a chunked object's hash with its manifest),
-- and it has been idle for at least minIdle
-- seconds. Its rules record (the reads budget of a reads: n object) goes with
-- it. Membership in a lifetime of another hash tag
-- (a foreign member) is kept in another slot, so the caller checks it
-- beforehand; it is not checked here.
--
-- An eviction is recorded in the object's set of finished calls (the one
-- the ownership scripts keep, kept 60 s), so that the same call sent again
-- after a lost reply answers 1 (evicted) again instead of 0 (gone). Calls
-- that keep the object change nothing, so their resend simply looks again.
--
-- KEYS[1] data     the object's data key, <ns>:{<tag>}:d:<key>
-- KEYS[2] record   its ownership record, <ns>:{<tag>}:own:<key>
-- KEYS[3] leases   its handle leases, <ns>:{<tag>}:lease:<key>
-- KEYS[4] members  the own-member set of the lifetime whose id is <tag>,
--                  <ns>:{<tag>}:members (usually absent)
-- KEYS[5] done     its recently finished calls, <ns>:{<tag>}:done:<key>
--                  (sorted set: '<call>:<outcome>' -> forget at, ms)
-- KEYS[6] rules    its rules record, <ns>:{<tag>}:rules:<key> (usually absent)
-- KEYS[7] refs     its references, when it is a deduped object (dedupe: true),
--                  <ns>:{<tag>}:refs:<key> (usually absent)
-- ARGV[1] member   <key> as it appears in the data key (the name an own
--                  member has in the members set)
-- ARGV[2] minIdle  seconds the object must have been idle (OBJECT IDLETIME:
--                  since its last read or write); 0 for no such check
--                  (0 to 999999999999)
-- ARGV[3] token    this call's token
--
-- Returns: 1  evicted
--          0  kept: the object is gone already
--          2  kept: it is owned (ownership record or handle lease)
--          3  kept: it is an own member of a lifetime
--          4  kept: it was used less than minIdle seconds ago
--          5  kept: the data key holds another Redis type than a string, or a
--             hash without a chunk manifest (not written by proxystore-redis)
--          6  kept: it has an expiry (its own ttl): it goes by itself
--          7  kept: it is a deduped object that has references (its holders
--             evict it, or their ttls end it)
-- Errors:  PSR_INVALID_OPTIONS  KEYS that are not one object's; minIdle not a
--                               whole number of seconds; a bad token;
--                               minIdle > 0 on a Redis
--                               that does not track idle time (an LFU
--                               maxmemory-policy)
local rcall = redis.call
--@include intArg
--@include tokenArg
--@include nowMs
--@include finishedCall
--@include markFinished

local data, member = KEYS[1], ARGV[1]
local suffix = 'd:' .. member
local prefix = string.sub(data, 1, #data - #suffix)
if member == '' or #data <= #suffix or string.sub(data, #prefix + 1) ~= suffix
    or string.sub(prefix, -2) ~= '}:'
    or KEYS[2] ~= prefix .. 'own:' .. member
    or KEYS[3] ~= prefix .. 'lease:' .. member
    or KEYS[4] ~= prefix .. 'members'
    or KEYS[5] ~= prefix .. 'done:' .. member
    or KEYS[6] ~= prefix .. 'rules:' .. member
    or KEYS[7] ~= prefix .. 'refs:' .. member then
  return redis.error_reply('PSR_INVALID_OPTIONS gcEvict: the KEYS are not the data, record, leases, members, done, rules and refs keys of one object')
end
local minIdle, err = intArg('gcEvict', 'minIdle', ARGV[2], 0, 999999999999)
if not minIdle then return err end
local token, err2 = tokenArg('gcEvict', 'token', ARGV[3])
if not token then return err2 end

local doneType = rcall('TYPE', KEYS[5])['ok']
if doneType ~= 'none' and doneType ~= 'zset' then
  return redis.error_reply('PSR_SERIALIZATION gcEvict: Redis key ' .. KEYS[5] .. ' holds another Redis type, not a set of finished calls')
end

-- This very call, sent again: its first run evicted the object.
local call = 'gc:' .. token
if doneType == 'zset' and finishedCall(KEYS[5], call, { 1 }) then return 1 end

-- TYPE, EXISTS, SISMEMBER and OBJECT do not update the key's access time.
local kind = rcall('TYPE', data)['ok']
if kind == 'none' then return 0 end
if kind ~= 'string' and kind ~= 'hash' then return 5 end
if rcall('EXISTS', KEYS[2], KEYS[3]) > 0 then return 2 end
if rcall('EXISTS', KEYS[7]) > 0 then return 7 end
if rcall('TYPE', KEYS[4])['ok'] == 'set' and rcall('SISMEMBER', KEYS[4], member) == 1 then return 3 end
if rcall('PTTL', data) >= 0 then return 6 end
if minIdle > 0 then
  local idle = redis.pcall('OBJECT', 'IDLETIME', data)
  if type(idle) == 'table' and idle.err then
    return redis.error_reply('PSR_INVALID_OPTIONS gcEvict: this Redis does not track idle time (its maxmemory-policy is an LFU policy), so minIdle cannot be used')
  end
  if idle < minIdle then return 4 end
end
-- A hash is a chunked object's only with its manifest (HGET counts as an access: after the idle check).
if kind == 'hash' and not string.find(rcall('HGET', data, 'm') or '', '^1:%d+:%d+:%d+:[%w_%-]+$') then return 5 end
rcall('UNLINK', data, KEYS[6])
markFinished(KEYS[5], call, 1, nowMs(), 0)
return 1
