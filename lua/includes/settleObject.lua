-- settleObject(data, record, leases): after a change, evict the object when
-- no handle remains (owner and borrows all gone), otherwise let its three keys
-- expire when the last lease ends. Returns 0 when it evicted, 1 otherwise.
-- That expiry is what makes a crashed owner's object go away by itself.
local function settleObject(data, record, leases)
  local last = rcall('ZRANGE', leases, -1, -1, 'WITHSCORES')
  if #last == 0 then
    rcall('DEL', data, record, leases)
    return 0
  end
  local horizon = math.floor(tonumber(last[2]))
  -- The three keys always expire together: when the leases set already has
  -- this expiry (the usual case: the last lease did not move), so do the others.
  if rcall('PEXPIRETIME', leases) ~= horizon then
    rcall('PEXPIREAT', data, horizon)
    rcall('PEXPIREAT', record, horizon)
    rcall('PEXPIREAT', leases, horizon)
  end
  return 1
end
