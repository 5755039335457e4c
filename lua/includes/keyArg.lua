-- keyArg(script, data, value): `value`, shortened for messages (shown), when
-- it is the store key whose data key is `data` (the ARGV key every
-- ownership script names its object by in messages); otherwise nil and the
-- PSR_INVALID_OPTIONS error reply. Braces and '%' are percent-encoded in
-- Redis keys, as src/keys.ts does (a key without '%' is compared as it is:
-- encoding changes nothing in it, and a data key holds no brace).
--@include shown
--@include objectKey
local function keyArg(script, data, value)
  if type(value) == 'string' and value ~= '' then
    local _, stored = dataKeyParts(data)
    local same
    if value == stored then
      same = not string.find(value, '%', 1, true)
    else
      same = stored ~= nil and (string.gsub(value, '[%%{}]', { ['%'] = '%25', ['{'] = '%7B', ['}'] = '%7D' })) == stored
    end
    if same then return shown(value) end
  end
  return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': key must be the store key of KEYS[1] (' ..
    shown(data) .. '), got ' .. shown(value))
end
