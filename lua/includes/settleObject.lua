-- settleObject(data, record, leases, now, ttl): after a change, evict the
-- object when no handle remains (owner and borrows all gone); otherwise note
-- that the object was seen now (field `seen`, see purgeLeases) and let its
-- three keys expire 3 x `ttl` after the last lease ends. Returns 0 when it
-- evicted, 1 otherwise.
--
-- That expiry is what makes a crashed owner's object go away by itself. The
-- margin beyond the last lease is what lets an object survive a Redis outage
-- (a paused or unreachable server) longer than its leases: Redis expires
-- keys as soon as it runs again, before any holder could renew.
local function settleObject(data, record, leases, now, ttl)
  local last = rcall('ZRANGE', leases, -1, -1, 'WITHSCORES')
  if #last == 0 then
    rcall('DEL', data, record, leases)
    return 0
  end
  rcall('HSET', record, 'seen', now)
  local horizon = math.floor(tonumber(last[2])) + 3 * ttl
  -- The three keys always expire together: when the leases set already has
  -- this expiry (the usual case: the last lease did not move), so do the others.
  if rcall('PEXPIRETIME', leases) ~= horizon then
    rcall('PEXPIREAT', data, horizon)
    rcall('PEXPIREAT', record, horizon)
    rcall('PEXPIREAT', leases, horizon)
  end
  return 1
end
