-- recordTtl(record, fallback): the lease length (ms) recorded for an owned
-- object (field `ttl`, the longest lease any of its handles was granted), or
-- `fallback` when the record has none (a record written by hand or by an
-- older version). It scales the outage margin of the object's key TTLs, the
-- silence after which lapsed leases get a grace instead of a purge, and how
-- long finished calls are remembered for resends.
local function recordTtl(record, fallback)
  local n = tonumber(rcall('HGET', record, 'ttl'))
  if not n or n < 1 or n > 2592000000 or n ~= math.floor(n) then return fallback end
  return n
end
