-- gcEvict: evict one object that nothing holds (the command line's `gc`),
-- checking in the same step that this is still so: it has no ownership
-- record and no handle lease, it is not an own member of the lifetime whose
-- id is its hash tag, it holds bytes (a Redis string), and it has been idle
-- for at least minIdle seconds. Membership in a lifetime of another hash tag
-- (a foreign member) is kept in another slot, so the caller checks it
-- beforehand; it is not checked here.
--
-- An eviction leaves a short-lived marker holding the call's token, so that
-- the same call sent again after a lost reply answers 1 (evicted) again
-- instead of 0 (gone). Calls that keep the object change nothing, so their
-- resend simply looks again.
--
-- KEYS[1] data     the object's data key, <ns>:{<tag>}:d:<key>
-- KEYS[2] record   its ownership record, <ns>:{<tag>}:own:<key>
-- KEYS[3] leases   its handle leases, <ns>:{<tag>}:lease:<key>
-- KEYS[4] members  the own-member set of the lifetime whose id is <tag>,
--                  <ns>:{<tag>}:members (usually absent)
-- KEYS[5] marker   the eviction marker, <ns>:{<tag>}:gc:<key> (a string
--                  holding the evicting call's token; expires after ttlMs)
-- ARGV[1] member   <key> as it appears in the data key (the name an own
--                  member has in the members set)
-- ARGV[2] minIdle  seconds the object must have been idle (OBJECT IDLETIME:
--                  since its last read or write); 0 for no such check
--                  (0 to 999999999999)
-- ARGV[3] token    this call's token
-- ARGV[4] ttlMs    how long the marker lives, in milliseconds
--
-- Returns: 1  evicted
--          0  kept: the object is gone already
--          2  kept: it is owned (ownership record or handle lease)
--          3  kept: it is an own member of a lifetime
--          4  kept: it was used less than minIdle seconds ago
--          5  kept: the data key holds another Redis type than a string
--             (not written by proxystore-redis)
-- Errors:  PSR_INVALID_OPTIONS  KEYS that are not one object's; minIdle not a
--                               whole number of seconds; a bad token or ttlMs;
--                               minIdle > 0 on a Redis
--                               that does not track idle time (an LFU
--                               maxmemory-policy)
local rcall = redis.call
--@include intArg
--@include tokenArg

local data, member = KEYS[1], ARGV[1]
local suffix = 'd:' .. member
local prefix = string.sub(data, 1, #data - #suffix)
if member == '' or #data <= #suffix or string.sub(data, #prefix + 1) ~= suffix
    or string.sub(prefix, -2) ~= '}:'
    or KEYS[2] ~= prefix .. 'own:' .. member
    or KEYS[3] ~= prefix .. 'lease:' .. member
    or KEYS[4] ~= prefix .. 'members'
    or KEYS[5] ~= prefix .. 'gc:' .. member then
  return redis.error_reply('PSR_INVALID_OPTIONS gcEvict: the KEYS are not the data, record, leases, members and marker keys of one object')
end
local minIdle, err = intArg('gcEvict', 'minIdle', ARGV[2], 0, 999999999999)
if not minIdle then return err end
local token, err2 = tokenArg('gcEvict', 'token', ARGV[3])
if not token then return err2 end
local ttl, err3 = intArg('gcEvict', 'ttlMs', ARGV[4], 1, 9999999999999)
if not ttl then return err3 end

-- This very call, sent again: its first run evicted the object.
local marker = redis.pcall('GET', KEYS[5])
if type(marker) == 'table' and marker.err and not string.find(marker.err, 'WRONGTYPE', 1, true) then return marker end
if marker == token then return 1 end

-- TYPE, EXISTS, SISMEMBER and OBJECT do not update the key's access time.
local kind = rcall('TYPE', data)['ok']
if kind == 'none' then return 0 end
if kind ~= 'string' then return 5 end
if rcall('EXISTS', KEYS[2], KEYS[3]) > 0 then return 2 end
if rcall('TYPE', KEYS[4])['ok'] == 'set' and rcall('SISMEMBER', KEYS[4], member) == 1 then return 3 end
if minIdle > 0 then
  local idle = redis.pcall('OBJECT', 'IDLETIME', data)
  if type(idle) == 'table' and idle.err then
    return redis.error_reply('PSR_INVALID_OPTIONS gcEvict: this Redis does not track idle time (its maxmemory-policy is an LFU policy), so minIdle cannot be used')
  end
  if idle < minIdle then return 4 end
end
rcall('UNLINK', data)
rcall('SET', KEYS[5], token, 'PX', ttl)
return 1
