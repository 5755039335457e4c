-- foreignMode(value): true for 'touch' (the script applies expiries and
-- evictions to foreign members itself: every key is on this server, a single
-- Redis), false for 'return' (the script only records or pops foreign members,
-- as strings in the lifetime's own slot, and hands them to the caller, which
-- applies the effect on the nodes that own them: Redis Cluster), nil for
-- anything else.
local function foreignMode(value)
  if value == 'touch' then return true end
  if value == 'return' then return false end
  return nil
end
