-- staticLapse(expiresAt, lease, seen, now): what a script does with the lease
-- of a StaticLifetime part (lease end `expiresAt`, lease length `lease`, meta
-- field `seen`: the server time a heartbeat, put or add last touched it):
--
--   nil      the lease runs: carry on;
--   'grace'  the lease end passed while nothing touched the part for more
--            than lease / 2. A live process renews every lease / 3, so the
--            silence is a Redis outage (paused or unreachable: nobody could
--            renew) or a stall of the process, not a process that stopped:
--            the caller gives the part a fresh lease (now + lease) instead of
--            ending it. Its keys are still there thanks to the margin
--            (keysExpireAt);
--   'ended'  the lease end passed although the part was touched within
--            lease / 2: puts or adds went on while its heartbeat stopped.
--            The part has ended.
--
-- A part whose process died is touched by nobody: its keys expire at the
-- margin (keysExpireAt). A missing `seen` counts as a silence.
local function staticLapse(expiresAt, lease, seen, now)
  if expiresAt > now then return nil end
  local last = tonumber(seen)
  if not last or now - last > lease / 2 then return 'grace' end
  return 'ended'
end
