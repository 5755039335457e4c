-- lifetimeEnded(meta, state, now): the PSR_LIFETIME_ENDED error reply for a
-- lifetime that is not open (state 'closing', 'ended', or false when Redis no
-- longer knows the lifetime). Names the lifetime and says what to do.
local function lifetimeEnded(meta, state, now)
  local who = 'lifetime ' .. (string.match(meta, '{(.-)}') or meta)
  local name = rcall('HGET', meta, 'name')
  if name and name ~= '' then who = who .. ' ("' .. name .. '")' end
  local what
  if state == 'closing' then
    what = 'is being closed'
  elseif state == 'ended' then
    local at = tonumber(rcall('HGET', meta, 'endedAt')) or now
    what = string.format('was closed %.1f s ago', (now - at) / 1000)
  else
    what = 'has ended (its lease ran out, or it was closed long enough ago that Redis forgot it)'
  end
  return redis.error_reply('PSR_LIFETIME_ENDED ' .. who .. ' ' .. what .. ': it takes no new objects; use a new lifetime')
end
