-- leaseMs(value): a lease length argument as a positive integer of
-- milliseconds, or nil when it is not one.
local function leaseMs(value)
  local n = tonumber(value)
  if not n or n <= 0 or n ~= math.floor(n) then return nil end
  return n
end
