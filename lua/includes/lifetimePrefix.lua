-- lifetimePrefix(meta, members, foreign): '<namespace>:{<id>}:', the prefix
-- of every key of the lifetime whose meta hash is `meta`, after checking that
-- `meta` is a lifetime's meta key (<ns>:{<id>}:lt, the id made of A-Z a-z 0-9
-- _ - as src/keys.ts checks it) and that `members` (and `foreign`, unless
-- nil) are that lifetime's sets; nil if they are not. An own member's data
-- key is prefix .. 'd:' .. member: it shares the lifetime's hash tag.
local function lifetimePrefix(meta, members, foreign)
  local prefix = string.match(meta, '^([^{}]+:{[%w_%-]+}:)lt$')
  if not prefix then return nil end
  if members ~= prefix .. 'members' then return nil end
  if foreign ~= nil and foreign ~= prefix .. 'foreign' then return nil end
  return prefix
end
