-- nowMs(): the server's clock in Unix milliseconds. Leases are computed from
-- it, so the clients' clocks never matter.
local function nowMs()
  local t = rcall('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
