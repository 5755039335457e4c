-- msArg(script, name, value): `value` (the string, as given) when it is a
-- count of milliseconds from 1 to 9999999999999 (1 to 13 decimal digits, no
-- leading zero: the same rule as intArg(script, name, value, 1,
-- 9999999999999)), otherwise nil and the PSR_INVALID_OPTIONS error reply. For
-- an argument the script only passes on to Redis (PX, PEXPIRE): no tonumber
-- and no number formatting, each about as costly as a Redis command
-- (docs/performance.md).
--@include shown
local function msArg(script, name, value)
  if type(value) ~= 'string' or #value > 13 or not string.find(value, '^[1-9]%d*$') then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': ' .. name ..
      ' must be an integer from 1 to 9999999999999, got ' .. shown(value))
  end
  return value
end
