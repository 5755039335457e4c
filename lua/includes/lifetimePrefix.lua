-- lifetimePrefix(meta, members, foreign): '<namespace>:{<id>}:', the prefix
-- of every key of the lifetime whose meta hash is `meta`, after checking that
-- `members` (and `foreign`, unless nil) are that lifetime's sets; nil if they
-- are not. An own member's data key is prefix .. 'd:' .. member: it shares
-- the lifetime's hash tag.
local function lifetimePrefix(meta, members, foreign)
  if string.sub(meta, -3) ~= ':lt' then return nil end
  local prefix = string.sub(meta, 1, #meta - 2)
  if members ~= prefix .. 'members' then return nil end
  if foreign ~= nil and foreign ~= prefix .. 'foreign' then return nil end
  return prefix
end
