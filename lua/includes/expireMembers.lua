-- expireMembers(prefix, cursor, count, at, touchForeign): give the next chunk
-- of members (about `count`) the expiry `at` (Unix ms). `cursor` walks the
-- own members ('m:<SSCAN cursor>') and then the foreign ones ('f:<SSCAN
-- cursor>'). A call that finishes the own members goes on into the foreign
-- ones if it has budget left (at most two SSCANs per call). Own members' data
-- keys are derived from the lifetime's prefix (same hash tag) and always
-- expired here; foreign members are whole data keys in other hash tags:
-- expired here when `touchForeign` (a single Redis), otherwise only collected
-- for the caller, which expires them on their own nodes (Redis Cluster).
-- Returns the next cursor ('done' at the end) and the collected foreign
-- members, or nil for a malformed cursor (before touching anything).
local function expireMembers(prefix, cursor, count, at, touchForeign)
  local which, pos = string.match(cursor, '^([mf]):(%d+)$')
  -- At most 19 digits: SSCAN refuses a cursor beyond 2^64 with a bare error.
  if not which or #pos > 19 then return nil end
  local touched = 0
  local found = {}
  while true do
    local set = KEYS[2]
    if which == 'f' then set = KEYS[3] end
    local reply = rcall('SSCAN', set, pos, 'COUNT', count - touched)
    for _, member in ipairs(reply[2]) do
      if which == 'm' then
        rcall('PEXPIREAT', prefix .. 'd:' .. member, at)
      elseif touchForeign then
        rcall('PEXPIREAT', member, at)
      else
        found[#found + 1] = member
      end
    end
    touched = touched + #reply[2]
    pos = reply[1]
    if pos ~= '0' then return which .. ':' .. pos, found end
    if which == 'f' then return 'done', found end
    if touched >= count then return 'f:0', found end
    which, pos = 'f', '0'
  end
end
