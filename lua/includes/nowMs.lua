-- nowMs(): the Redis server's clock in milliseconds. Every lease is measured
-- against this one clock, so the clocks of client hosts never matter.
local function nowMs()
  local t = rcall('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
