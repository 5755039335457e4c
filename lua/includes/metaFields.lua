-- metaFields(script, meta, ...): the lifetime meta's fields (HMGET), or nil
-- and the PSR_INVALID_OPTIONS error reply when the key holds another Redis
-- type (not a lifetime written by proxystore-redis). Scripts read the meta
-- before any write, so such a key is refused with nothing changed. Any other
-- error (an ACL refusal, ...) is passed on as it is.
--@include shown
local function metaFields(script, meta, ...)
  local fields = redis.pcall('HMGET', meta, ...)
  if type(fields) == 'table' and fields.err then
    if not string.find(fields.err, 'WRONGTYPE', 1, true) then return nil, fields end
    return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': ' .. shown(meta) ..
      ' holds another Redis type: it is not a lifetime')
  end
  return fields
end
