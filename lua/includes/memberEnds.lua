-- memberEnds(prefix, own, foreign, touchForeign, ends): the own ends of a
-- chunk of members, as collectMembers returned them (own members' data keys,
-- foreign members' whole data keys): a table data key -> own end (Unix ms)
-- for those listed in `ends` (the lifetime's members with their own end or
-- rules record: own ones by member name, foreign ones by data key). Reads
-- only: `ends` is looked up only when it exists, so a lifetime without such
-- members walks as fast as before, and the rules records that expireMembers
-- will write (derived keys beside the data keys: every own one, and the
-- foreign ones when touchForeign) are checked with checkLocal here, so a Redis
-- Cluster slot in migration stops the call before its first write.
--@include objectKey
--@include checkLocal
local function memberEnds(prefix, own, foreign, touchForeign, ends)
  local found = {}
  if rcall('EXISTS', ends) == 0 then return found end
  local derived = {}
  for _, data in ipairs(own) do
    local e = tonumber(rcall('ZSCORE', ends, string.sub(data, #prefix + 3)))
    if e then
      found[data] = e
      derived[#derived + 1] = objectKey(data, 'rules') or data
    end
  end
  for _, data in ipairs(foreign) do
    local e = tonumber(rcall('ZSCORE', ends, data))
    if e then
      found[data] = e
      if touchForeign then derived[#derived + 1] = objectKey(data, 'rules') or data end
    end
  end
  checkLocal(derived)
  return found
end
