-- Fencing of borrows (issue 12 point 5). Each borrow or mutBorrow grant gets
-- the next number of the object's grant counter (record field `grants`),
-- kept with its lease (field `g:<token>`) and carried by the handle (and its
-- ref). release and update present it: a grant this Redis never made (a
-- master that acknowledged it was replaced in a failover before its replica
-- had it) or no longer holds can never write here, and the error says which.
--
-- fenceGrant(record, token): number a new grant; returns the number.
-- fenceError(record, key, token, grant, op): the PSR_REFERENCE_INVALID error
--   reply when `grant` is a number this Redis never made, or not the one
--   `token` holds; nil otherwise (0: none presented, an owner or an old ref;
--   a grant made here and ended since is left to the caller's own check).
--@include intArg
local function fenceGrant(record, token)
  local grant = rcall('HINCRBY', record, 'grants', 1)
  rcall('HSET', record, 'g:' .. token, grant)
  return grant
end

local function fenceError(record, key, token, grant, op)
  if grant == 0 then return nil end
  local known = tonumber(rcall('HGET', record, 'g:' .. token))
  if known == grant then return nil end
  local seen = tonumber(rcall('HGET', record, 'grants')) or 0
  if grant > seen then
    return redis.error_reply('PSR_REFERENCE_INVALID ' .. op .. ': the borrow of key ' .. key .. ' is grant #' ..
      string.format('%d', grant) .. ', which this Redis never made (it has made ' .. string.format('%d', seen) ..
      '): a master that was replaced in a failover granted it before its replica had it, so it cannot write here')
  end
  if known then
    return redis.error_reply('PSR_REFERENCE_INVALID ' .. op .. ': the borrow of key ' .. key .. ' presents grant #' ..
      string.format('%d', grant) .. ', but its token holds grant #' .. string.format('%d', known))
  end
  -- A grant this Redis made and no longer holds: the caller's own check says why (released, expired).
  return nil
end

-- grantArg(script, value): the grant number a call presents: '' is 0 (none:
-- owners, refs of older versions), else an integer from 0 to 10^15.
local function grantArg(script, value)
  if value == nil or value == '' then return 0 end
  return intArg(script, 'grant', value, 0, 999999999999999)
end
