-- update: write new bytes for an owned object, by its unborrowed owner or by
-- its mutable borrow, checking that rule and writing in one step. With
-- write = 0 it only checks (an unresolved handle has nothing to write, but
-- breaking the rule still fails, as in ProxyStore).
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, ttl, seen, v, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- KEYS[4] done    its recently finished calls (sorted set: '<call>:<outcome>' -> forget at, ms)
-- KEYS[5] stage   KEYS[1] itself for bytes sent in ARGV[5]; for a chunked
--                 value, the staging hash of its new chunks (a new write id),
--                 <ns>:{<tag>}:stage:<key>:<write id>, swapped in whole
--                 (includes/writeData.lua): a reader of the old chunks finds
--                 them gone, never mixed with the new ones
-- ARGV[1] key     the store key (for messages; must be the key of KEYS[1])
-- ARGV[2] token   the owner's or the mutable borrow's token
-- ARGV[3] call    this call's own random token (recognises its resend)
-- ARGV[4] write   '1' to write `bytes`, '0' to check the rule only
-- ARGV[5] bytes   the new serialized object, or a chunked value's manifest
--                 (ignored when write is '0')
-- ARGV[6] grant   the mutable borrow's grant number (includes/fence.lua); '' or
--                 '0' presents none (an owner, or a ref of an older version)
--
-- Returns: the object's version after the call (field `v` of the record,
--          absent = 0): bumped by one when the call writes, unchanged when it
--          only checks. A resend of a call that already succeeded (found in
--          `done`) writes nothing again and returns the current version,
--          which is this call's or a later one: never older than what the
--          call wrote, so a process that records it as seen (src/cache/)
--          never serves the bytes it replaced.
-- Errors:  PSR_INVALID_OPTIONS     a malformed argument, or KEYS of several objects
--          PSR_REFERENCE_INVALID   no live owner or borrow has this token
--          PSR_MUTABLE_BORROW      the owner updates while the object is borrowed
--          PSR_REFERENCE_NOT_OWNED the token is a shared borrow's
--          PSR_LIFETIME_ENDED      the object's lifetime ended (it only waits
--                                  for its borrows to end: lifetimeBound)
local rcall = redis.call
--@include keyArg
--@include oneObject
--@include tokenArg
--@include nowMs
--@include recordTtl
--@include purgeLeases
--@include ownerError
--@include settleObject
--@include finishedCall
--@include markFinished
--@include intArg
--@include fence
--@include writeData

local key, err = keyArg('update', KEYS[1], ARGV[1])
if not key then return err end
err = oneObject('update', KEYS[1], { own = KEYS[2], lease = KEYS[3], done = KEYS[4] })
if err then return err end
local token, callToken
token, err = tokenArg('update', 'token', ARGV[2])
if not token then return err end
callToken, err = tokenArg('update', 'call', ARGV[3])
if not callToken then return err end
local grant
grant, err = grantArg('update', ARGV[6])
if not grant then return err end
local write = ARGV[4]
if write ~= '0' and write ~= '1' then
  return redis.error_reply('PSR_INVALID_OPTIONS update: write must be 0 or 1, got ' .. shown(write))
end

local call = 'update:' .. callToken
if finishedCall(KEYS[4], call, { 1 }) then return tonumber(rcall('HGET', KEYS[2], 'v') or '0') end
local state = 'plain'
if write == '1' then
  state, err = stagedData('update', KEYS[1], KEYS[5], ARGV[5])
  if not state then return err end
end
local now = nowMs()
local ttl = recordTtl(KEYS[2], 30000)
purgeLeases(KEYS[1], KEYS[2], KEYS[3], now, ttl)
-- Its lifetime ended: neither the owner nor a live mutable borrow writes any more.
err = endedError(KEYS[2], KEYS[3], key)
if err then return err end
err = fenceError(KEYS[2], key, token, grant, 'update')
if err then return err end
local owner = rcall('HGET', KEYS[2], 'owner')
if owner == token then
  err = ownerError(KEYS[1], KEYS[2], key, token, KEYS[3])
  if err then return err end
  local borrows = rcall('ZCARD', KEYS[3]) - 1
  if borrows > 0 then
    return redis.error_reply('PSR_MUTABLE_BORROW the OwnedProxy of key ' .. key .. ' has ' .. borrows ..
      ' borrow(s): it cannot be updated until they are released (a RefMutProxy can update)')
  end
elseif not rcall('ZSCORE', KEYS[3], token) then
  return redis.error_reply('PSR_REFERENCE_INVALID the handle of key ' .. key ..
    ' is invalid: it was released, dropped or moved, or its lease expired')
elseif rcall('HGET', KEYS[2], 'mut') ~= token then
  return redis.error_reply('PSR_REFERENCE_NOT_OWNED a RefProxy of key ' .. key ..
    ' is a shared borrow and cannot update the object: use mutBorrow()')
elseif rcall('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('PSR_REFERENCE_INVALID the object of key ' .. key .. ' is gone')
end

local version = tonumber(rcall('HGET', KEYS[2], 'v') or '0')
if write == '1' then
  writeData(KEYS[1], KEYS[5], ARGV[5], state, 'keep', 0)
  version = rcall('HINCRBY', KEYS[2], 'v', 1)
end
settleObject(KEYS[1], KEYS[2], KEYS[3], now, ttl)
markFinished(KEYS[4], call, 1, now, ttl)
return version
