-- tokenArg(script, name, value): `value` when it is a token (16 to 64
-- characters of A-Z a-z 0-9 _ -, as randomId() makes them), otherwise nil
-- and the PSR_INVALID_OPTIONS error reply naming the script and the
-- argument. No token can be empty, so none can match a marker such as the
-- empty owner of an orphaned object.
--@include shown
local function tokenArg(script, name, value)
  if type(value) ~= 'string' or #value < 16 or #value > 64 or not string.find(value, '^[%w_%-]+$') then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': ' .. name ..
      ' must be a token of 16 to 64 characters A-Z a-z 0-9 _ -, got ' .. shown(value))
  end
  return value
end
