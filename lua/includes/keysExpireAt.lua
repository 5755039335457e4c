-- keysExpireAt(expiresAt, lease): when a lifetime's keys and members expire,
-- given its lease end `expiresAt` (Unix ms) and, for a StaticLifetime part,
-- its lease length `lease` (staticLease; nil for any other lifetime).
--
-- A lease's keys expire at its end. A static part's keys expire 2 x lease
-- later: Redis expires keys the moment it runs again after being paused or
-- unreachable, before any heartbeat could renew them, so without the margin
-- an outage longer than the lease would wipe the static objects of live
-- processes. Two leases let a live process through an outage of up to about
-- 2 2/3 leases, while a dead process's objects still go within one lease of
-- Redis coming back from a 2-lease outage. (Owned objects' keys keep 3 x
-- their lease, settleObject: a script purges their lapsed leases sooner.)
local function keysExpireAt(expiresAt, lease)
  if lease then return expiresAt + 2 * lease end
  return expiresAt
end
