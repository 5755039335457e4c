-- expireMembers(own, foreign, at, touchForeign, ends, owned): give a chunk of
-- members, as collectMembers returned them (own members' data keys, foreign
-- members' whole data keys), the expiry `at` (Unix ms): own members always;
-- foreign members only when `touchForeign` (a single Redis), otherwise they
-- are handed to the caller, which expires them on their own nodes (Redis
-- Cluster). A member with an own end in `ends` (memberEnds: data key -> own
-- end, read and checked before the script's first write) gets the earlier of
-- `at` and its own end, and so does its rules record (beside its data key); a
-- foreign one of those, with touchForeign false, is handed to the caller with
-- its own end instead.
--
-- Returns the foreign members the caller gives `at`, and those with an own
-- end as a flat list {dataKey, ownEnd, ...} (the caller gives each, and its
-- rules record, the earlier of `at` and its own end); both empty with
-- touchForeign.
--
-- An owned member (in `owned`, memberEnds' second table) is not given an
-- expiry: its owner is bound by `at` (or its own end, if earlier) instead,
-- and its keys settle as the ownership rules say (ownedMember bindOwned).
--@include objectKey
--@include nowMs
--@include ownedMember
local function expireMembers(own, foreign, at, touchForeign, ends, owned)
  owned = owned or {}
  local lt = string.match(KEYS[1], '{(.-)}')
  local now
  local function expire(data)
    local e = ends[data]
    if owned[data] then
      now = now or nowMs()
      local t = at
      if e and e < t then t = e end
      bindOwned(data, t, lt, now)
    elseif e then
      local t = math.min(at, e)
      rcall('PEXPIREAT', data, t)
      rcall('PEXPIREAT', objectKey(data, 'rules') or data, t)
    else
      rcall('PEXPIREAT', data, at)
    end
  end
  for _, data in ipairs(own) do expire(data) end
  local found, capped = {}, {}
  for _, data in ipairs(foreign) do
    if touchForeign then
      expire(data)
    elseif ends[data] then
      capped[#capped + 1] = data
      capped[#capped + 1] = ends[data]
    else
      found[#found + 1] = data
    end
  end
  return found, capped
end
