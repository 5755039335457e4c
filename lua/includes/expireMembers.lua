-- expireMembers(prefix, cursor, count, at, touchForeign, ends): give the next
-- chunk of members (about `count`) the expiry `at` (Unix ms). `cursor` walks
-- the own members ('m:<SSCAN cursor>') and then the foreign ones ('f:<SSCAN
-- cursor>'). A call that finishes the own members goes on into the foreign
-- ones if it has budget left (at most two SSCANs per call). Own members' data
-- keys are derived from the lifetime's prefix (same hash tag) and always
-- expired here; foreign members are whole data keys in other hash tags:
-- expired here when `touchForeign` (a single Redis), otherwise only collected
-- for the caller, which expires them on their own nodes (Redis Cluster).
--
-- A member listed in `ends` (the lifetime's members with their own end or
-- rules record) gets the earlier of `at` and its own end, and its rules
-- record (beside its data key) gets the same; a foreign one of those, with
-- touchForeign false, is handed to the caller with its own end instead.
-- `ends` is looked up only when it exists, so a lifetime without such
-- members walks as fast as before.
--
-- Returns the next cursor ('done' at the end), the collected foreign members
-- (the caller gives them `at`) and the collected foreign members with an own
-- end, as a flat list {dataKey, ownEnd, ...} (the caller gives each, and its
-- rules record, the earlier of `at` and its own end); or nil for a malformed
-- cursor (before touching anything).
--@include objectKey
local function expireMembers(prefix, cursor, count, at, touchForeign, ends)
  local which, pos = string.match(cursor, '^([mf]):(%d+)$')
  -- At most 19 digits: SSCAN refuses a cursor beyond 2^64 with a bare error.
  if not which or #pos > 19 then return nil end
  local ruled = rcall('EXISTS', ends) == 1
  local touched = 0
  local found = {}
  local capped = {}
  while true do
    local set = KEYS[2]
    if which == 'f' then set = KEYS[3] end
    local reply = rcall('SSCAN', set, pos, 'COUNT', count - touched)
    for _, member in ipairs(reply[2]) do
      local ownEnd = ruled and tonumber(rcall('ZSCORE', ends, member))
      if which == 'm' or touchForeign then
        local data = member
        if which == 'm' then data = prefix .. 'd:' .. member end
        if ownEnd then
          local t = math.min(at, ownEnd)
          rcall('PEXPIREAT', data, t)
          rcall('PEXPIREAT', objectKey(data, 'rules') or data, t)
        else
          rcall('PEXPIREAT', data, at)
        end
      elseif ownEnd then
        capped[#capped + 1] = member
        capped[#capped + 1] = ownEnd
      else
        found[#found + 1] = member
      end
    end
    touched = touched + #reply[2]
    pos = reply[1]
    if pos ~= '0' then return which .. ':' .. pos, found, capped end
    if which == 'f' then return 'done', found, capped end
    if touched >= count then return 'f:0', found, capped end
    which, pos = 'f', '0'
  end
end
