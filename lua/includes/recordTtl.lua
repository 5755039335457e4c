-- recordTtl(record, fallback): the lease length (ms) recorded for an owned
-- object (field `ttl`, the longest lease any of its handles was granted), or
-- `fallback` when the record has none (a record written by hand or by an
-- older version). It scales the outage margin of the object's key TTLs, the
-- silence after which lapsed leases get a grace instead of a purge, and how
-- long finished calls are remembered for resends.
--
-- recordTtlValue(value, fallback): the same for the field's value, already read.
local function recordTtlValue(value, fallback)
  local n = tonumber(value)
  if not n or n < 1 or n > 2592000000 or n ~= math.floor(n) then return fallback end
  return n
end
local function recordTtl(record, fallback)
  return recordTtlValue(rcall('HGET', record, 'ttl'), fallback)
end
