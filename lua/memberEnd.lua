-- memberEnd: end one foreign member of a closing lifetime on the node that
-- holds it (Redis Cluster: lifetimeClose hands foreign members, in other
-- slots, to its caller). A plain object is unlinked with its rules record;
-- an owned one (it may have been owned after it joined) is ended as an
-- owned member: its owner ends, and the object goes now when nothing
-- borrows it, else when its last borrow ends (includes/ownedMember.lua), as
-- lifetimeClose does with the members it reaches itself.
--
-- KEYS[1] data      the member's data key
-- KEYS[2] rules     its rules record
-- KEYS[3] record    its ownership record
-- KEYS[4] leases    its handle leases
-- ARGV[1] lifetime  the closing lifetime's id
--
-- Returns: 1 when the object existed (unlinked, or its owner ended), else 0
--          (a resend finds it gone, or its owner already ended: it changes
--          nothing more, and answers 0 or 1 as it finds it)
-- Errors:  PSR_INVALID_OPTIONS  KEYS of several objects, or a malformed lifetime id
local rcall = redis.call
--@include oneObject
--@include lifetimeIdArg
--@include nowMs
--@include ownedMember

local err = oneObject('memberEnd', KEYS[1], { rules = KEYS[2], own = KEYS[3], lease = KEYS[4] })
if err then return err end
local lt
lt, err = lifetimeIdArg('memberEnd', ARGV[1])
if not lt then return err end

if rcall('EXISTS', KEYS[3]) == 1 then
  if rcall('HEXISTS', KEYS[3], 'ended') == 1 then return 0 end
  endOwnedMember(KEYS[1], lt, nowMs())
  return 1
end
local existed = rcall('UNLINK', KEYS[1])
rcall('UNLINK', KEYS[2])
return existed
