-- consume: one consuming read of an ephemeral object (evict, or reads: n),
-- atomically. An object without a rules record has a budget of one read
-- (evict: true, reads: 1): the read takes it. An object with one
-- (reads: n, n >= 2) gives up one read of its budget per call: the read
-- number is recorded under the consumer's token, and the last read takes
-- the object. The budget never goes below 0 and two racing consumers never
-- both get the last read (the script is atomic).
--
-- The read that takes the object (the only one, or the last) does not free
-- it at once: it renames it to a short-lived grace key whose name ends with
-- the consumer's token, leaves a tombstone that says who consumed it (and,
-- for reads: n, "read n of n times"), deletes the rules record, and takes
-- the object out of the lifetime whose id is its hash tag (an own member:
-- the members set and the set of members with their own end share the
-- object's slot). A consume that ran but whose reply was lost (connection
-- killed, Redis restarted from its AOF) gets the value again when it is sent
-- again with the same token: ioredis's automatic resend, or the application
-- resolving the same proxy again (the token belongs to the proxy object, see
-- src/proxy/proxy.ts). An earlier read of a reads: n object is recognised by
-- its token in the rules record and reads the object again without spending
-- the budget twice. Any other token finds nothing of this.
--
-- KEYS[1] data       the object's data key, <ns>:{<tag>}:d:<key>
-- KEYS[2] tombstone  the object's consume tombstone, <ns>:{<tag>}:tomb:<key>
-- KEYS[3] grace      where the consumed bytes wait for this token's resend,
--                    <ns>:{<tag>}:grace:<key>:<token>
-- KEYS[4] rules      the object's rules record, <ns>:{<tag>}:rules:<key> (hash:
--                    reads (left), of (given), t:<token> (read number); absent
--                    for a budget of one read)
-- KEYS[5] members    the own-member set of the lifetime whose id is <tag>,
--                    <ns>:{<tag>}:members (usually absent)
-- KEYS[6] ends       that lifetime's members with their own end or rules
--                    record, <ns>:{<tag>}:ends (usually absent)
-- ARGV[1] token      the consumer's token (16 to 64 characters A-Z a-z 0-9 _ -)
-- ARGV[2] consumer   JSON describing the consumer (pid, host, frame), at most 4096 bytes
-- ARGV[3] ttlMs      how long the tombstone lives, in milliseconds
-- ARGV[4] graceMs    how long the grace copy lives, in milliseconds
--
-- Returns: {1, value}                       the object, read by this token
--                                           (now, or by an earlier call with it),
--                                           an earlier read of a reads: n object
--          {1, value, 1}                    the same, when the read took the object:
--                                           its grace copy (KEYS[3]) holds it, and
--                                           the consumer, once it has the value,
--                                           UNLINKs it (src/redis/connector.ts), so
--                                           graceMs is only the tail of a lost reply
--          {1, manifest, 1, 1}              a chunked object (a hash, src/chunks/):
--                                           its manifest instead of its bytes; the
--                                           grace copy (KEYS[3]) holds it, whether
--                                           this read took the object (renamed
--                                           there) or was an earlier read of a
--                                           reads: n object (copied there, so that a
--                                           racing last read cannot take the chunks
--                                           away mid-read); the consumer reads the
--                                           chunks from it, then UNLINKs it
--          {0, tombstone | nil, nowMs}      the object is missing; the tombstone
--                                           is "<consumedAtMs> <token> <consumer JSON>",
--                                           or "<consumedAtMs> <token> <of> <consumer JSON>"
--                                           when the last of `of` (>= 2) reads took it
-- Errors:  PSR_INVALID_OPTIONS  not exactly 6 KEYS and 4 ARGV (the generated guard),
--                               KEYS that are not this object's keys for this
--                               token, a ttl that is not an integer from 1 to
--                               9999999999999, a malformed token or consumer
--          PSR_SERIALIZATION    the data, tombstone, grace, rules, members or ends
--                               key holds something proxystore-redis did not write
local rcall = redis.call
--@include nowMs
--@include nowMsText
--@include intArg
--@include msArg
--@include tokenArg
--@include shown

local token, err = tokenArg('consume', 'token', ARGV[1])
if not token then return err end
local ttl, err1 = msArg('consume', 'ttlMs', ARGV[3])
if not ttl then return err1 end
local grace, err2 = msArg('consume', 'graceMs', ARGV[4])
if not grace then return err2 end
if #ARGV[2] > 4096 then
  return redis.error_reply('PSR_INVALID_OPTIONS consume: consumer must be at most 4096 bytes, got ' .. #ARGV[2])
end
-- (objectKey's match, done once: every other key is built from its parts.)
local prefix, member = string.match(KEYS[1], '^([^{}]+:{[^{}]+}:)d:([^{}]+)$')
if not prefix or KEYS[2] ~= prefix .. 'tomb:' .. member or KEYS[3] ~= prefix .. 'grace:' .. member .. ':' .. token
    or KEYS[4] ~= prefix .. 'rules:' .. member or KEYS[5] ~= prefix .. 'members' or KEYS[6] ~= prefix .. 'ends' then
  return redis.error_reply('PSR_INVALID_OPTIONS consume: KEYS ' .. shown(KEYS[1]) .. ', ' .. shown(KEYS[2]) .. ', ' ..
    shown(KEYS[3]) .. ', ' .. shown(KEYS[4]) .. ', ' .. shown(KEYS[5]) .. ' and ' .. shown(KEYS[6]) ..
    ' are not the data, tombstone, grace, rules, members and ends keys of one object for this token')
end

-- A key of another type makes a read fail; pcall turns that into a coded
-- error, before any write, instead of Redis's "script: <sha>, on
-- @user_script:<line>" message. Any other error (an ACL refusal, ...) is
-- passed on as it is.
local function read(...)
  local reply = redis.pcall(...)
  if type(reply) == 'table' and reply.err then
    if not string.find(reply.err, 'WRONGTYPE', 1, true) then return nil, reply end
    local key = select(2, ...)
    return nil, redis.error_reply('PSR_SERIALIZATION consume: Redis key ' .. shown(key)
      .. ' holds a value of another Redis type, not one written by proxystore-redis')
  end
  return reply
end
-- (The rarer paths below are written out where they are taken, not as
-- local functions: each closure costs every call ~1,000 instructions to make
-- and collect, docs/performance.md round 3.)

-- A chunked object is a hash whose field m is its manifest (src/chunks/):
-- a GET of it fails (WRONGTYPE); its manifest is read instead.
local value, err3 = read('GET', KEYS[1])
local manifest
if err3 then
  manifest = rcall('TYPE', KEYS[1])['ok'] == 'hash' and rcall('HGET', KEYS[1], 'm')
  if not manifest then return err3 end
  value = manifest
end
if value then
  local rules, err4 = read('HMGET', KEYS[4], 'reads', 'of', 't:' .. token)
  if err4 then return err4 end
  local left, of
  if rules[1] then
    left = intArg('consume', 'reads', rules[1], 1, 999999999999999)
    of = intArg('consume', 'of', rules[2], 1, 999999999999999)
    if not left or not of or of < left then
      return redis.error_reply('PSR_SERIALIZATION consume: the rules record ' .. shown(KEYS[4]) .. ' has a malformed ' ..
        (left and 'of' or 'reads') .. ': it was not written by proxystore-redis')
    end
    -- rules[3]: this token read it before (its reply was lost): the same
    -- read again. Otherwise, with reads left after this one, it spends one.
    if rules[3] or left > 1 then
      if not rules[3] then
        -- (Numbers as text: a Lua number passed to redis.call is printed with
        -- '%.17g', several times the cost of '%d'.)
        rcall('HSET', KEYS[4], 'reads', string.format('%d', left - 1), 't:' .. token, string.format('%d', of - left + 1))
      end
      -- A chunked object is left for its consumer in a copy that lives
      -- graceMs, so that a racing last read cannot take the chunks mid-read.
      if manifest then
        rcall('COPY', KEYS[1], KEYS[3], 'REPLACE')
        rcall('PEXPIRE', KEYS[3], grace)
        return {1, manifest, 1, 1}
      end
      return {1, value}
    end
  end
  -- The read that takes the object. Its lifetime bookkeeping is read first,
  -- so that a key of another type is refused before anything is written
  -- (one EXISTS first: both keys are usually absent).
  local isMember, ownEnd = 0, nil
  if rcall('EXISTS', KEYS[5], KEYS[6]) > 0 then
    local err5, err6
    isMember, err5 = read('SISMEMBER', KEYS[5], member)
    if err5 then return err5 end
    ownEnd, err6 = read('ZSCORE', KEYS[6], member)
    if err6 then return err6 end
  end
  rcall('RENAME', KEYS[1], KEYS[3])
  rcall('PEXPIRE', KEYS[3], grace)
  local reads = ''
  -- (rules[2] is `of` as intArg checked it: its digits, no leading zero.)
  if of and of > 1 then reads = rules[2] .. ' ' end
  rcall('SET', KEYS[2], nowMsText() .. ' ' .. token .. ' ' .. reads .. ARGV[2], 'PX', ttl)
  if left then rcall('DEL', KEYS[4]) end
  if isMember == 1 then rcall('SREM', KEYS[5], member) end
  if ownEnd then rcall('ZREM', KEYS[6], member) end
  if manifest then return {1, manifest, 1, 1} end
  return {1, value, 1}
end

-- This token took the object before (its reply was lost): same value.
local kept, err7 = read('GET', KEYS[3])
if err7 then
  local keptManifest = rcall('TYPE', KEYS[3])['ok'] == 'hash' and rcall('HGET', KEYS[3], 'm')
  if not keptManifest then return err7 end
  return {1, keptManifest, 1, 1}
end
if kept then return {1, kept, 1} end

local tombstone, err8 = read('GET', KEYS[2])
if err8 then return err8 end
return {0, tombstone, nowMs()}
