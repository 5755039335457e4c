-- isDataKey(prefix, key): whether `key` is the data key of an object in the
-- namespace of the lifetime whose keys start with `prefix` ('<ns>:{<id>}:'),
-- that is <ns>:{<tag>}:d:<key> as src/keys.ts builds it (no brace in the tag
-- or the key: they are percent-encoded). Scripts that take data keys of
-- other objects (foreign members) check them with it before any write.
--@include objectKey
local function isDataKey(prefix, key)
  local ns = string.match(prefix, '^([^{}]+):{')
  return type(key) == 'string' and ns ~= nil and string.sub(key, 1, #ns + 2) == ns .. ':{'
    and objectKey(key, 'd') ~= nil
end
