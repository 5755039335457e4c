-- memberEnds(prefix, own, foreign, touchForeign, ends): the own ends of a
-- chunk of members, as collectMembers returned them (own members' data keys,
-- foreign members' whole data keys): a table data key -> own end (Unix ms)
-- for those listed in `ends` (the lifetime's members with their own end or
-- rules record, and its owned own members: own ones by member name, foreign
-- ones by data key); and a second table, data key -> true, of the owned
-- members (ownership record beside the data key): own ones among those in
-- `ends`, and with touchForeign every foreign one that is owned (it may have
-- been owned after it joined). Reads only: `ends` is looked up only when it
-- exists, so a lifetime without such members walks as fast as before, and
-- the keys that expireMembers will write (derived keys beside the data keys:
-- rules records, and owned members' records and leases; every own one, and
-- the foreign ones when touchForeign) are checked with checkLocal here, so a
-- Redis Cluster slot in migration stops the call before its first write.
--@include objectKey
--@include checkLocal
local function memberEnds(prefix, own, foreign, touchForeign, ends)
  local found, owned = {}, {}
  local hasEnds = rcall('EXISTS', ends) == 1
  if not hasEnds and not (touchForeign and #foreign > 0) then return found, owned end
  local derived = {}
  local function note(data)
    derived[#derived + 1] = objectKey(data, 'rules') or data
    local record = objectKey(data, 'own')
    if record and rcall('EXISTS', record) == 1 then
      owned[data] = true
      derived[#derived + 1] = objectKey(data, 'lease')
    end
  end
  if hasEnds then
    local listed = {}
    for _, data in ipairs(own) do
      local e = tonumber(rcall('ZSCORE', ends, string.sub(data, #prefix + 3)))
      if e then
        found[data] = e
        listed[#listed + 1] = data
      end
    end
    -- Their ownership records, checked before they are read.
    local records = {}
    for i, data in ipairs(listed) do records[i] = objectKey(data, 'own') or data end
    checkLocal(records)
    for _, data in ipairs(listed) do note(data) end
  end
  for _, data in ipairs(foreign) do
    local e = hasEnds and tonumber(rcall('ZSCORE', ends, data))
    if e then found[data] = e end
    if touchForeign then note(data) end
  end
  checkLocal(derived)
  return found, owned
end
