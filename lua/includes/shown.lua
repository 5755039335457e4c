-- shown(value): an argument as an error message may show it: at most 100
-- characters, control characters as '?' (error replies are one line).
local function shown(value)
  return (string.gsub(string.sub(tostring(value), 1, 100), '%c', '?'))
end
