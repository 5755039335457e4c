-- memberExpire: give one foreign member of a lifetime its lifetime's bound,
-- on the node that holds it (Redis Cluster: the lifetime's scripts hand
-- foreign members, in other slots, to their caller). A plain object gets the
-- expiry `at` (the earlier of it and its own end, with its rules record); an
-- owned one (it may have been owned after it joined) is bound instead: its
-- record names the lifetime and its owner's `until` becomes that expiry,
-- and its keys settle as the ownership rules say (includes/ownedMember.lua:
-- never under a live borrow). Safe to send twice: the same bound again.
--
-- KEYS[1] data      the member's data key
-- KEYS[2] rules     its rules record
-- KEYS[3] record    its ownership record
-- KEYS[4] leases    its handle leases
-- ARGV[1] lifetime  the lifetime's id
-- ARGV[2] atMs      the lifetime's members' expiry (Unix ms), or -1 without a
--                   lease (then only an owned object is bound, to be ended by
--                   the lifetime's close)
-- ARGV[3] ownEnd    the member's own end (Unix ms), or 0 for none
--
-- Returns: 1 for a plain object, 2 for an owned one (0 when it is missing)
-- Errors:  PSR_INVALID_OPTIONS  KEYS of several objects, a malformed
--                               lifetime id, atMs or ownEnd
local rcall = redis.call
--@include oneObject
--@include lifetimeIdArg
--@include intArg
--@include nowMs
--@include ownedMember

local err = oneObject('memberExpire', KEYS[1], { rules = KEYS[2], own = KEYS[3], lease = KEYS[4] })
if err then return err end
local lt, at, ownEnd
lt, err = lifetimeIdArg('memberExpire', ARGV[1])
if not lt then return err end
at, err = intArg('memberExpire', 'atMs', ARGV[2], -1, 99999999999999)
if not at then return err end
if at == 0 then
  return redis.error_reply('PSR_INVALID_OPTIONS memberExpire: atMs must be a Unix time in ms or -1, got 0')
end
ownEnd, err = intArg('memberExpire', 'ownEnd', ARGV[3], 0, 99999999999999)
if not ownEnd then return err end

local t = at > 0 and at or nil
if t and ownEnd > 0 and ownEnd < t then t = ownEnd end
if rcall('EXISTS', KEYS[3]) == 1 then
  bindOwned(KEYS[1], t, lt, nowMs())
  return 2
end
if rcall('EXISTS', KEYS[1]) == 0 then return 0 end
if t then
  rcall('PEXPIREAT', KEYS[1], t)
  if ownEnd > 0 then rcall('PEXPIREAT', KEYS[2], t) end
end
return 1
