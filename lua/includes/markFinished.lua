-- markFinished(done, call, outcome, now, ttl): remember that `call` finished
-- with `outcome`, so that its resend (same arguments, after a lost reply)
-- returns the same outcome and changes nothing. Entries are kept for
-- 4 x ttl, at least 60 s: longer than any outage the object survives (see
-- settleObject), so a call resent after a reconnect still finds its record.
-- Entries past their time are pruned on every write, so under constant
-- traffic the set holds at most one window's calls; the key expires with
-- its newest entry.
local function markFinished(done, call, outcome, now, ttl)
  local keep = now + math.max(60000, 4 * ttl)
  rcall('ZREMRANGEBYSCORE', done, '-inf', now)
  rcall('ZADD', done, keep, call .. ':' .. outcome)
  local last = rcall('ZRANGE', done, -1, -1, 'WITHSCORES')
  rcall('PEXPIREAT', done, math.floor(tonumber(last[2])))
end
