-- purgeLeases(record, leases, now): forget every handle whose lease ended at
-- or before `now`. An expired owner leaves the object orphaned (owner ''),
-- an expired mutable borrow frees the object for other borrows. Runs first in
-- every ownership script, so a dead holder stops blocking without any client
-- acting.
local function purgeLeases(record, leases, now)
  local expired = rcall('ZRANGEBYSCORE', leases, '-inf', now)
  if #expired == 0 then return end
  local owner = rcall('HGET', record, 'owner')
  local mut = rcall('HGET', record, 'mut')
  for _, token in ipairs(expired) do
    rcall('HDEL', record, 'h:' .. token)
    if token == owner then rcall('HSET', record, 'owner', '') end
    if token == mut then rcall('HSET', record, 'mut', '') end
  end
  rcall('ZREMRANGEBYSCORE', leases, '-inf', now)
end
