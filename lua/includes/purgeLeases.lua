-- purgeLeases(data, record, leases, now, ttl): deal with every handle whose
-- lease ended at or before `now`. Runs first in every ownership script, so a
-- dead holder stops blocking without any client acting.
--
-- Normally the lapsed handles are forgotten: an expired owner leaves the
-- object orphaned (owner ''), an expired mutable borrow frees the object for
-- other borrows. But when no script saw the object for more than `ttl` / 2
-- (field `seen`), the silence is an outage (Redis paused or unreachable, so
-- nobody could renew: live holders renew every ttl / 3), not a holder that
-- stopped: the lapsed leases get a fresh `ttl` from now instead, and the
-- holders that are alive renew them before that ends. A holder that really
-- died loses its lease `ttl` after the outage.
--
-- First of all, an object bound to a lifetime whose bound (`until`) passed
-- loses its owner (lifetimeBound): a lease lifetime ends even when no
-- script saw it end.
--
-- Returns 0 when it evicted the object (no handle left), 1 otherwise.
--@include settleObject
--@include lifetimeBound
local function purgeLeases(data, record, leases, now, ttl)
  local ended = boundOver(record, leases, now)
  local expired = rcall('ZRANGEBYSCORE', leases, '-inf', now)
  if #expired == 0 then
    if ended then return settleObject(data, record, leases, now, ttl) end
    return 1
  end
  local seen = tonumber(rcall('HGET', record, 'seen'))
  if seen and now - seen > ttl / 2 then
    for _, token in ipairs(expired) do rcall('ZADD', leases, now + ttl, token) end
    return settleObject(data, record, leases, now, ttl)
  end
  local owner = rcall('HGET', record, 'owner')
  local mut = rcall('HGET', record, 'mut')
  for _, token in ipairs(expired) do
    rcall('HDEL', record, 'h:' .. token, 'g:' .. token)
    if token == owner then rcall('HSET', record, 'owner', '') end
    if token == mut then rcall('HSET', record, 'mut', '') end
  end
  rcall('ZREMRANGEBYSCORE', leases, '-inf', now)
  return settleObject(data, record, leases, now, ttl)
end
