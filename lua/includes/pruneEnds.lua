-- pruneEnds(members, foreign, ends, now, count): forget up to `count` members
-- of a lifetime whose own end (their score in `ends`) passed before `now`:
-- their keys expired then (an own member's keys never outlive its own end;
-- a foreign member's own end is the expiry it had when it joined, which the
-- lifetime never carries it past), so they leave `ends` and their member
-- set. Keeps the sets of a long-lived lifetime from growing with objects
-- that ended by their ttl. Members without an own end (score 9999999999999)
-- are never pruned. An own member is a store key (no '{'); a foreign member
-- is a whole data key.
local function pruneEnds(members, foreign, ends, now, count)
  local gone = rcall('ZRANGEBYSCORE', ends, '-inf', '(' .. string.format('%d', now), 'LIMIT', 0, count)
  if #gone == 0 then return end
  for _, member in ipairs(gone) do
    if string.find(member, '{', 1, true) then
      rcall('SREM', foreign, member)
    else
      rcall('SREM', members, member)
    end
  end
  rcall('ZREM', ends, unpack(gone))
end
