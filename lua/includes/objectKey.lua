-- objectKey(data, kind): the key of `kind` ('own', 'lease', 'tomb', ...) of
-- the object whose data key is `data` (<ns>:{<tag>}:d:<key> gives
-- <ns>:{<tag>}:<kind>:<key>), or nil when `data` is not a data key. Scripts
-- compare their KEYS against it to refuse keys of several objects.
local function objectKey(data, kind)
  local prefix, key = string.match(data, '^([^{}]+:{[^{}]+}:)d:([^{}]+)$')
  if not prefix then return nil end
  return prefix .. kind .. ':' .. key
end
