-- lifetimeIdArg(script, value): `value` when it is a lifetime id (1 to 128
-- characters of A-Z a-z 0-9 _ -, as src/keys.ts checks it), otherwise nil
-- and the PSR_INVALID_OPTIONS error reply naming the script.
--@include shown
local function lifetimeIdArg(script, value)
  if type(value) ~= 'string' or #value < 1 or #value > 128 or not string.match(value, '^[%w_%-]+$') then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': lifetime must be a lifetime id (1 to 128 characters A-Z a-z 0-9 _ -), got ' .. shown(value))
  end
  return value
end
