-- intArg(script, name, value, min, max): `value` as an integer from `min` to
-- `max`, or nil and the PSR_INVALID_OPTIONS error reply naming the script
-- and the argument. Only decimal digits with an optional '-' and no leading
-- zero pass: tonumber would also take '1e3', ' 5', '0x10', 'inf' and '1.5',
-- and a later PEXPIREAT or SSCAN would then fail after a write (Redis never
-- rolls a script back). At most 15 digits, so the number is exact.
-- (string.find, not string.match: no capture string is made; a leading '-'
-- is the 16th character a value may have.)
--@include shown
local function intArg(script, name, value, min, max)
  local n
  if value == '0' then
    n = 0
  elseif type(value) == 'string' and #value <= 16 and string.find(value, '^%-?[1-9]%d*$')
      and (#value <= 15 or string.byte(value) == 45) then
    n = tonumber(value)
  end
  if not n or n < min or n > max then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': ' .. name .. ' must be an integer from ' ..
      string.format('%d', min) .. ' to ' .. string.format('%d', max) .. ', got ' .. shown(value))
  end
  return n
end
