-- What a lifetime does to an owned member (an object with an ownership
-- record; docs/lifetimes.md, "Owned objects in lifetimes"). The member's
-- ownership record and leases (derived from its data key, in its slot) are
-- changed as the ownership scripts change them, so every ownership rule
-- keeps holding.
--
-- isOwned(data): whether the object of data key `data` has an ownership record.
--
-- endOwnedMember(data, lt, now): the lifetime `lt` (its id) ended: end the
-- owner (lifetimeBound endOwner) and evict the object now when no borrow is
-- left, else when the last one ends. Returns 1 when the object is gone, 0
-- when borrows keep it. Running it again changes nothing more.
--
-- bindOwned(data, at, lt, now): bound the owner by lifetime `lt`: its
-- `until` becomes `at` (Unix ms; nil: no lease, only a close ends it, and an
-- `until` the object already had stays) and its
-- keys' expiry is settled again (settleObject: the later of the owner's part,
-- capped by `at`, and its borrows). An object its lifetime already ended is
-- left as it is.
--@include objectKey
--@include recordTtl
--@include purgeLeases
--@include settleObject
--@include lifetimeBound
local function isOwned(data)
  local record = objectKey(data, 'own')
  return record ~= nil and rcall('EXISTS', record) == 1
end

local function endOwnedMember(data, lt, now)
  local record, leases = objectKey(data, 'own'), objectKey(data, 'lease')
  local ttl = recordTtl(record, 30000)
  if purgeLeases(data, record, leases, now, ttl) == 0 then return 1 end
  endOwner(record, leases, now, lt)
  if settleObject(data, record, leases, now, ttl) == 0 then
    rcall('UNLINK', objectKey(data, 'rules'))
    return 1
  end
  return 0
end

local function bindOwned(data, at, lt, now)
  local record, leases = objectKey(data, 'own'), objectKey(data, 'lease')
  local ttl = recordTtl(record, 30000)
  -- First what is due (lapsed leases, a bound that passed): an owner that ended stays ended.
  if purgeLeases(data, record, leases, now, ttl) == 0 then return end
  if rcall('HEXISTS', record, 'ended') == 1 then return end
  rcall('HSET', record, 'lt', lt)
  if at then rcall('HSET', record, 'until', at) end
  settleObject(data, record, leases, now, ttl)
end
