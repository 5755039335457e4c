-- keysExpireAt(expiresAt, lease): when a lifetime's keys and members expire,
-- given its lease end `expiresAt` (Unix ms) and, for a StaticLifetime part,
-- its lease length `lease` (staticLease; nil for any other lifetime).
--
-- A lease's keys expire at its end. A static part's keys expire 3 x lease
-- later: Redis expires keys the moment it runs again after being paused or
-- unreachable, before any heartbeat could renew them, so without the margin
-- an outage longer than the lease would wipe the static objects of live
-- processes. The owned objects' margin is the same (settleObject).
local function keysExpireAt(expiresAt, lease)
  if lease then return expiresAt + 3 * lease end
  return expiresAt
end
