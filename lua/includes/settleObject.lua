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
--
-- An object bound to a lifetime (record fields `until`, `ended`: see
-- lifetimeBound) expires at the later of its owner's part, capped by
-- `until`, and its borrows' leases plus the margin: a lifetime never deletes
-- it under a live borrow. Once its lifetime ended it, the record outlives
-- the object as a marker (max(60 s, 4 x ttl), as finished calls are kept)
-- that tells the owner why its handle is invalid.
local function settleObject(data, record, leases, now, ttl)
  local last = rcall('ZRANGE', leases, -1, -1, 'WITHSCORES')
  local f = rcall('HMGET', record, 'until', 'ended', 'owner')
  local keep = math.max(60000, 4 * ttl)
  if #last == 0 then
    if f[2] then
      rcall('DEL', data, leases)
      rcall('PEXPIRE', record, keep)
    else
      rcall('DEL', data, record, leases)
    end
    return 0
  end
  rcall('HSET', record, 'seen', now)
  local bound = tonumber(f[1])
  if not bound and not f[2] then
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
  -- Bound: the owner's part ends at `until` at the latest; borrows are not capped.
  local owner = f[3]
  local horizon = 0
  local top = rcall('ZRANGE', leases, -2, -1, 'WITHSCORES')
  for i = 1, #top, 2 do
    local t = math.floor(tonumber(top[i + 1])) + 3 * ttl
    if top[i] == owner and not f[2] then
      if bound and bound < t then t = bound end
    end
    if t > horizon then horizon = t end
  end
  if horizon <= now then horizon = now + 1 end
  if rcall('PEXPIRETIME', leases) ~= horizon then
    rcall('PEXPIREAT', data, horizon)
    rcall('PEXPIREAT', leases, horizon)
  end
  if rcall('PEXPIRETIME', record) ~= horizon + keep then rcall('PEXPIREAT', record, horizon + keep) end
  return 1
end
