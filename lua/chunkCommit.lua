-- chunkCommit: make a chunked object visible, atomically: the staging hash
-- its chunks were written to (src/chunks/write.ts) gets its manifest and is
-- renamed onto the object's data key, with the object's expiry. Used for
-- objects that have no other record (a plain put, with or without a ttl, and
-- putStream without rules); puts with rules, lifetimes or an owner commit
-- their chunks through their own script (includes/writeData.lua).
--
-- A resend of the same call (after a lost reply) finds the data key holding
-- this very write (same manifest, whose write id is random) and changes
-- nothing.
--
-- KEYS[1] data     the object's data key, <ns>:{<tag>}:d:<key>
-- KEYS[2] stage    its staging hash, <ns>:{<tag>}:stage:<key>:<write id>
-- ARGV[1] manifest '1:<total>:<count>:<chunk size>:<write id>'
-- ARGV[2] ttlMs    milliseconds until the object expires (1 to 9999999999999),
--                  or 0 for no expiry
--
-- Returns: 1 (written now), 2 (a resend: written by an earlier run)
-- Errors:  PSR_INVALID_OPTIONS   a malformed manifest or ttlMs, a staging key
--                                that is not this object's for this write
--          PSR_REDIS_OPERATION   the staging hash is gone or incomplete
--                                (expired): nothing was written
local rcall = redis.call
--@include intArg
--@include writeData

local ttl, err = intArg('chunkCommit', 'ttlMs', ARGV[2], 0, 9999999999999)
if not ttl then return err end
if KEYS[2] == KEYS[1] then
  return redis.error_reply('PSR_INVALID_OPTIONS chunkCommit: KEYS[2] must be a staging hash, not the data key')
end
local state, err2 = stagedData('chunkCommit', KEYS[1], KEYS[2], ARGV[1])
if not state then return err2 end
if state == 'done' then return 2 end
if ttl > 0 then
  writeData(KEYS[1], KEYS[2], ARGV[1], state, 'px', ttl)
else
  writeData(KEYS[1], KEYS[2], ARGV[1], state, 'none', 0)
end
return 1
