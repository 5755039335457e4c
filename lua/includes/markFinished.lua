-- markFinished(done, call, outcome, now, ttl): remember that `call` finished
-- with `outcome`, so that its resend (same arguments, after a lost reply)
-- returns the same outcome and changes nothing. Entries are kept for
-- 4 x ttl, at least 60 s: longer than any outage the object survives (see
-- settleObject), so a call resent after a reconnect still finds its record.
-- Entries past their time are pruned on every write, so under constant
-- traffic the set holds at most one window's calls; the key expires with
-- its newest entry: its expiry is always its highest score (set here and
-- nowhere else), so it only moves when this entry ends later (PEXPIREAT
-- GT), and a set that ZADD just created (no expiry) gets this entry's.
local function markFinished(done, call, outcome, now, ttl)
  local keep = now + math.max(60000, 4 * ttl)
  rcall('ZREMRANGEBYSCORE', done, '-inf', now)
  rcall('ZADD', done, keep, call .. ':' .. outcome)
  if rcall('PEXPIREAT', done, keep, 'GT') == 0 and rcall('PEXPIRETIME', done) == -1 then
    rcall('PEXPIREAT', done, keep)
  end
end
