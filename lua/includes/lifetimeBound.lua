-- The lifetime that bounds an owned object (docs/lifetimes.md, "Owned
-- objects in lifetimes"). Its ownership record then carries:
--   lt          the lifetime's id (for messages and the CLI)
--   until       when the lifetime's bound passes (Unix ms: a lease's end, a
--               StaticLifetime part's lease end plus its outage margin, or
--               the object's own expiry when it was owned); none for a
--               ContextLifetime, which ends only by its close
--   ended       once the lifetime ended the owner: the lifetime's id ('-'
--               when unknown), with endedAt (ms) and endedOwner (the token
--               of the owner it ended, so that owner learns why)
-- A lifetime's end never deletes an object under a live borrow: it ends
-- the owner (its lease leaves the leases set, the record says `ended`), and
-- settleObject evicts the object once no borrow is left, leaving the record
-- as a short-lived marker that tells the owner (LifetimeEndedError).

-- endOwner(record, leases, now, lt): the lifetime `lt` ended: end the owner
-- (if it still has one) and mark the record. Changes nothing the second time.
local function endOwner(record, leases, now, lt)
  if rcall('HEXISTS', record, 'ended') == 1 then return end
  local owner = rcall('HGET', record, 'owner')
  if owner and owner ~= '' then
    rcall('ZREM', leases, owner)
    rcall('HDEL', record, 'h:' .. owner)
    rcall('HSET', record, 'endedOwner', owner)
  end
  rcall('HSET', record, 'owner', '', 'ended', lt, 'endedAt', now)
end

-- boundOver(record, leases, now): end the owner when the record's `until`
-- has passed (a lease lifetime ran out while no script saw the object);
-- true when it did so now.
local function boundOver(record, leases, now)
  local f = rcall('HMGET', record, 'until', 'ended', 'lt')
  local u = tonumber(f[1])
  if u and not f[2] and now >= u then
    endOwner(record, leases, now, f[3] or '-')
    return true
  end
  return false
end

-- endedError(record, leases, key): the PSR_LIFETIME_ENDED error reply when
-- the object's lifetime ended it, else nil.
local function endedError(record, leases, key)
  local f = rcall('HMGET', record, 'ended', 'endedAt')
  if not f[1] then return nil end
  local what = f[1] == '-' and 'its own expiry (a ttl, or the lease of a lifetime it belonged to) passed'
    or ('its lifetime ' .. f[1] .. ' ended (closed, or its lease ran out)')
  local borrowed = rcall('EXISTS', leases) == 1
  return redis.error_reply('PSR_LIFETIME_ENDED key ' .. key .. ': ' .. what ..
    ', so its OwnedProxy is invalid and it takes no new borrow, update or clone; ' ..
    (borrowed and 'the object is evicted when its last borrow ends' or 'the object was evicted'))
end
