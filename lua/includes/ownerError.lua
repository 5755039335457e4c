-- ownerError(data, record, key, token, leases): nil when `token` is the
-- owner of the object, otherwise the error reply that says why not:
-- PSR_LIFETIME_ENDED when the object's lifetime ended its owner (see
-- lifetimeBound), else PSR_REFERENCE_INVALID.
--@include lifetimeBound
local function ownerError(data, record, key, token, leases)
  local ended = endedError(record, leases, key)
  if ended then return ended end
  local owner = rcall('HGET', record, 'owner')
  if owner == token then
    if rcall('EXISTS', data) == 1 then return nil end
    return redis.error_reply('PSR_REFERENCE_INVALID the object of key ' .. key ..
      ' was deleted behind its owner\'s back (store.evict of an owned key?)')
  end
  if not owner then
    return redis.error_reply('PSR_REFERENCE_INVALID the OwnedProxy of key ' .. key ..
      ' is invalid: the object was dropped, or its owner\'s lease expired and nothing held it')
  end
  if owner == '' then
    return redis.error_reply('PSR_REFERENCE_INVALID the OwnedProxy of key ' .. key ..
      ' is invalid: it was dropped or its lease expired; the object is evicted when its last borrow ends')
  end
  return redis.error_reply('PSR_REFERENCE_INVALID this OwnedProxy of key ' .. key ..
    ' is not the owner: ownership was moved elsewhere (toRef)')
end
