-- drop: the owner ends the object (evicts it), unless it is borrowed.
--
-- KEYS[1] data    the object's data key
-- KEYS[2] record  its ownership record (hash: owner, mut, h:<token> -> holder)
-- KEYS[3] leases  its handle leases (sorted set: token -> lease end, ms)
-- ARGV[1] key     the store key (for messages)
-- ARGV[2] owner   the owner's token
--
-- Returns: 1
-- Errors:  PSR_REFERENCE_INVALID  `owner` is not the object's owner (moved,
--                                 dropped, lease expired)
--          PSR_BORROWED           the object has live borrows
local rcall = redis.call
--@include nowMs
--@include purgeLeases
--@include ownerError

local key = ARGV[1]
purgeLeases(KEYS[2], KEYS[3], nowMs())
local err = ownerError(KEYS[1], KEYS[2], key, ARGV[2])
if err then return err end
local borrows = rcall('ZCARD', KEYS[3]) - 1
if borrows > 0 then
  local mutable = rcall('HGET', KEYS[2], 'mut') ~= '' and 1 or 0
  return redis.error_reply('PSR_BORROWED the OwnedProxy of key ' .. key .. ' cannot be dropped while borrowed (' ..
    (borrows - mutable) .. ' RefProxy, ' .. mutable .. ' RefMutProxy): release the borrows first')
end

rcall('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
