-- grantLease(record, leases, token, holder, now, ttl): add a handle's lease
-- (it ends `ttl` ms from `now`) and remember which holder (a store instance
-- in some process) renews it; the record keeps the longest lease length.
--@include recordTtl
local function grantLease(record, leases, token, holder, now, ttl)
  rcall('ZADD', leases, now + ttl, token)
  rcall('HSET', record, 'h:' .. token, holder)
  if recordTtl(record, 0) < ttl then rcall('HSET', record, 'ttl', ttl) end
end
