-- setTypeError(script, key, probe): nil when `key` is missing or of the type
-- that the read-only command `probe` takes (SCARD for a set, ZCARD for a
-- sorted set); otherwise the error reply, coded PSR_INVALID_OPTIONS for a key
-- of another Redis type (not written by proxystore-redis). Scripts probe the
-- lifetime keys they will write before their first write, so such a key is
-- refused with nothing changed. Any other error (an ACL refusal, ...) is
-- passed on as it is. A probe that needs more arguments takes them after
-- `probe` (e.g. ZSCORE and a member): its reply is then the second result,
-- so a read the script needs anyway is the probe (no second call).
--@include shown
local function setTypeError(script, key, probe, ...)
  local reply = redis.pcall(probe, key, ...)
  if type(reply) == 'table' and reply.err then
    if not string.find(reply.err, 'WRONGTYPE', 1, true) then return reply end
    return redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': ' .. shown(key) .. ' holds another Redis type: it is not one of a lifetime\'s keys')
  end
  return nil, reply
end
