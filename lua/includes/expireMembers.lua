-- expireMembers(prefix, cursor, count, at): give the next chunk of members
-- (about `count`) the expiry `at` (Unix ms). `cursor` walks the own members
-- ('m:<SSCAN cursor>') and then the foreign ones ('f:<SSCAN cursor>'); returns
-- the next cursor, 'done' at the end, or nil for a malformed cursor. A call
-- that finishes the own members goes on into the foreign ones if it has
-- budget left (at most two SSCANs per call). Own members' data keys are
-- derived from the lifetime's prefix (same hash tag); foreign members are
-- stored as whole data keys.
local function expireMembers(prefix, cursor, count, at)
  local which, pos = string.match(cursor, '^([mf]):(%d+)$')
  if not which then return nil end
  local touched = 0
  while true do
    local set = KEYS[2]
    if which == 'f' then set = KEYS[3] end
    local reply = rcall('SSCAN', set, pos, 'COUNT', count - touched)
    for _, member in ipairs(reply[2]) do
      if which == 'm' then
        rcall('PEXPIREAT', prefix .. 'd:' .. member, at)
      else
        rcall('PEXPIREAT', member, at)
      end
    end
    touched = touched + #reply[2]
    pos = reply[1]
    if pos ~= '0' then return which .. ':' .. pos end
    if which == 'f' then return 'done' end
    if touched >= count then return 'f:0' end
    which, pos = 'f', '0'
  end
end
