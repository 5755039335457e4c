-- grantLease(record, leases, token, holder, until): add a handle's lease and
-- remember which holder (a store instance in some process) renews it.
local function grantLease(record, leases, token, holder, untilMs)
  rcall('ZADD', leases, untilMs, token)
  rcall('HSET', record, 'h:' .. token, holder)
end
