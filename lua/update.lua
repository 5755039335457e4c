-- update: write new bytes for an owned object, by its unborrowed owner or by
-- its mutable borrow, checking that rule and writing in one step. With
-- write = 0 it only checks (an unresolved handle has nothing to write, but
-- breaking the rule still fails, as in ProxyStore).
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- ARGV[1] key     the store key (for messages)
-- ARGV[2] token   the owner's or the mutable borrow's token
-- ARGV[3] write   '1' to write `bytes`, '0' to check the rule only
-- ARGV[4] bytes   the new serialized object (ignored when write is '0')
--
-- Returns: 1
-- Errors:  PSR_REFERENCE_INVALID   no live owner or borrow has this token
--          PSR_MUTABLE_BORROW      the owner updates while the object is borrowed
--          PSR_REFERENCE_NOT_OWNED the token is a shared borrow's
local rcall = redis.call
--@include nowMs
--@include purgeLeases
--@include ownerError

local key, token = ARGV[1], ARGV[2]
purgeLeases(KEYS[2], KEYS[3], nowMs())
local owner = rcall('HGET', KEYS[2], 'owner')
if owner == token then
  local err = ownerError(KEYS[1], KEYS[2], key, token)
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

if ARGV[3] == '1' then rcall('SET', KEYS[1], ARGV[4], 'KEEPTTL') end
return 1
