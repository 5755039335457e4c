-- oneObject(script, data, others): nil when every key of `others` (a table
-- kind -> Redis key, e.g. { own = KEYS[2], lease = KEYS[3] }) is the key of
-- that kind of the object whose data key is `data`; otherwise the
-- PSR_INVALID_OPTIONS error reply. Scripts call it before their first write,
-- so that KEYS of two objects (or a key outside the object's hash tag) can
-- never be mixed up in one call.
--@include objectKey
--@include shown
local function oneObject(script, data, others)
  for kind, key in pairs(others) do
    local want = objectKey(data, kind)
    if not want then
      return redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': KEYS[1] must be an object\'s data key (<ns>:{<tag>}:d:<key>), got ' .. shown(data))
    end
    if key ~= want then
      return redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': KEYS must be the keys of one object: expected ' ..
        shown(want) .. ', got ' .. shown(key))
    end
  end
  return nil
end
