-- staticLease(kind, lease): the lease length (ms) of a StaticLifetime part,
-- read from its meta's `kind` and `lease` fields; nil for every other
-- lifetime. A static part's lease is a liveness lease, renewed by its
-- process's heartbeat every lease / 3, so only it gets the outage margin on
-- its keys (keysExpireAt) and the grace after a silence (staticLapse). A
-- LeaseLifetime's end is the user's deadline: it gets neither. A static part
-- written without a `lease` field (by hand, or by an older version) keeps the
-- plain lease behaviour.
local function staticLease(kind, lease)
  if kind ~= 'static' then return nil end
  local n = tonumber(lease)
  if not n or n < 1 or n > 2592000000 or n ~= math.floor(n) then return nil end
  return n
end
