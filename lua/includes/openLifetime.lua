-- openLifetime(script, meta, now): what a script that adds to a lifetime
-- (lifetimePut, lifetimeAddKeys, lifetimeAddDeduped, lifetimeOwnedCreate,
-- futureCreate, futureSet) reads of it before anything else: when the
-- lifetime whose meta hash is `meta` is open, { expiresAt, lease, lapse }
-- (expiresAt: its lease end, nil for none; lease: a StaticLifetime part's
-- lease length, see staticLease; lapse: see staticLapse); otherwise nil and
-- the error reply that says how it ended (lifetimeEnded), also for a static
-- part whose lease lapsed although it was touched. Writes nothing: the
-- caller checks the rest of its input, then calls touchLifetime. `now` may
-- be nil (the caller needs no clock of its own): the server clock is then
-- read only for a static part (and an error's message), and returned as
-- `now` for touchLifetime.
--
-- touchLifetime(meta, open, now): the first write of such a script. A static
-- part whose lease lapsed in a silence (lapse 'grace': an outage, not a
-- dead process) gets a fresh lease from `now`, and a static part records
-- that it was touched (`seen`). Returns the expiry its members carry
-- (keysExpireAt of the lease end), or nil without a lease.
--@include nowMs
--@include metaFields
--@include lifetimeEnded
--@include staticLease
--@include staticLapse
--@include keysExpireAt
local function openLifetime(script, meta, now)
  local f, err = metaFields(script, meta, 'state', 'expiresAt', 'kind', 'lease', 'seen')
  if not f then return nil, err end
  if f[1] ~= 'open' then return nil, lifetimeEnded(meta, f[1], now or nowMs()) end
  local expiresAt = tonumber(f[2])
  local lease = expiresAt and staticLease(f[3], f[4])
  -- (A caller that needs no clock itself passes nil: TIME only for a static part.)
  if lease and not now then now = nowMs() end
  local lapse = lease and staticLapse(expiresAt, lease, f[5], now)
  if lapse == 'ended' then return nil, lifetimeEnded(meta, false, now) end
  return { expiresAt = expiresAt, lease = lease, lapse = lapse, now = now }
end

local function touchLifetime(meta, open, now)
  if open.lapse == 'grace' then
    open.expiresAt = now + open.lease
    rcall('HSET', meta, 'expiresAt', open.expiresAt)
    rcall('PEXPIREAT', meta, keysExpireAt(open.expiresAt, open.lease))
  end
  if open.lease then rcall('HSET', meta, 'seen', now) end
  return open.expiresAt and keysExpireAt(open.expiresAt, open.lease)
end
