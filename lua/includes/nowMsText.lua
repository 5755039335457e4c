-- nowMsText(): the Redis server's clock in milliseconds (as nowMs()), as
-- decimal text, built from TIME's two strings: no tonumber and no number
-- formatting, for a time that is only written into a string (a tombstone).
local function nowMsText()
  local t = rcall('TIME')
  return t[1] .. string.sub('00000' .. t[2], -6, -4)
end
