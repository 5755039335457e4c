-- expireMembers(own, foreign, at, touchForeign): give a chunk of members, as
-- collectMembers returned them, the expiry `at` (Unix ms): own members' data
-- keys always; foreign members (whole data keys in other hash tags) only when
-- `touchForeign` (a single Redis). Returns the foreign members the caller
-- must expire on their own nodes (Redis Cluster), or an empty list.
local function expireMembers(own, foreign, at, touchForeign)
  for _, data in ipairs(own) do rcall('PEXPIREAT', data, at) end
  if not touchForeign then return foreign end
  for _, data in ipairs(foreign) do rcall('PEXPIREAT', data, at) end
  return {}
end
