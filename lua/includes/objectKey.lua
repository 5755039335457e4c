-- objectKey(data, kind): the key of `kind` ('own', 'lease', 'tomb', ...) of
-- the object whose data key is `data` (<ns>:{<tag>}:d:<key> gives
-- <ns>:{<tag>}:<kind>:<key>), or nil when `data` is not a data key. Scripts
-- compare their KEYS against it to refuse keys of several objects.
--
-- dataKeyParts(data): '<ns>:{<tag>}:' and '<key>' of a data key, or nil.
-- The split of the last data key is kept, so the checks of one script
-- (keyArg, oneObject per kind) match KEYS[1] against the pattern once: a
-- match costs about as much as a Redis command (docs/performance.md).
local dataKeyOf, dataKeyPrefix, dataKeyName = false, nil, nil
local function dataKeyParts(data)
  if data ~= dataKeyOf then
    dataKeyPrefix, dataKeyName = string.match(data, '^([^{}]+:{[^{}]+}:)d:([^{}]+)$')
    dataKeyOf = data
  end
  return dataKeyPrefix, dataKeyName
end
local function objectKey(data, kind)
  local prefix, key = dataKeyParts(data)
  if not prefix then return nil end
  return prefix .. kind .. ':' .. key
end
