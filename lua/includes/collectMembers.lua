-- collectMembers(prefix, cursor, count): the next chunk (about `count`) of a
-- lifetime's members, read without writing anything. `cursor` walks the own
-- members ('m:<SSCAN cursor>') and then the foreign ones ('f:<SSCAN
-- cursor>'); a call that finishes the own members goes on into the foreign
-- ones if it has budget left (at most two SSCANs per call). Own members' data
-- keys are derived from the lifetime's prefix (same hash tag) and checked
-- with checkLocal, so a script that writes after this never stops half-way
-- on one of them; foreign members are whole data keys in other hash tags.
-- Returns the next cursor ('done' at the end), the own members' data keys and
-- the foreign members; nil for a malformed cursor.
--@include checkLocal
local function collectMembers(prefix, cursor, count)
  local which, pos = string.match(cursor, '^([mf]):(%d+)$')
  -- At most 19 digits: SSCAN refuses a cursor beyond 2^64 with a bare error.
  if not which or #pos > 19 then return nil end
  local own, foreign = {}, {}
  local next
  while true do
    local set = KEYS[2]
    if which == 'f' then set = KEYS[3] end
    local reply = rcall('SSCAN', set, pos, 'COUNT', count - #own - #foreign)
    for _, member in ipairs(reply[2]) do
      if which == 'm' then own[#own + 1] = prefix .. 'd:' .. member else foreign[#foreign + 1] = member end
    end
    pos = reply[1]
    if pos ~= '0' then
      next = which .. ':' .. pos
      break
    end
    if which == 'f' then
      next = 'done'
      break
    end
    if #own >= count then
      next = 'f:0'
      break
    end
    which, pos = 'f', '0'
  end
  checkLocal(own)
  return next, own, foreign
end
