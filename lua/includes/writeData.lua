-- stagedData(script, data, stage, value) and writeData(data, stage, value,
-- state, expiry, at): how a script writes an object's bytes, either sent in
-- ARGV (a value up to the store's chunkSize) or already written as chunks to
-- a staging hash (src/chunks/, docs/large-objects.md).
--
-- A chunked object's data key is a Redis HASH: field `m` is its manifest,
-- '1:<total bytes>:<chunk count>:<chunk size>:<write id>', and fields
-- '<write id>:<i>' its chunks, field `h` the first (up to 8) stored bytes
-- (the header: a range read needs no chunk 0). The client writes the chunks to the staging
-- hash <ns>:{<tag>}:stage:<key>:<write id> (same slot, short TTL), then one
-- script renames it onto the data key and applies the object's rules.
--
-- A script takes the staging key in KEYS next to the data key: the data key
-- itself says "no staging, the bytes are `value`"; another key says "`value`
-- is the manifest of the chunks in this staging hash".
--
-- stagedData checks, before the script's first write: it returns 'plain'
-- (write `value` with SET), 'staged' (rename the staging hash), 'done' (a
-- resend whose rename already happened: the data key holds this very write),
-- or nil and the error reply (a malformed manifest, a staging key of
-- another object or write, a staging hash that expired or is incomplete).
-- writeData then writes: expiry 'px' (at = ms from now), 'pxat' (at = Unix
-- ms), 'keep' (the TTL the data key had, none if it had none or did not
-- exist) or 'none' (no TTL).
--@include objectKey
--@include shown
local function chunkManifest(value)
  local total, count, size, w = string.match(value, '^1:(%d+):(%d+):(%d+):([%w_%-]+)$')
  if not total then return nil end
  return { total = tonumber(total), count = tonumber(count), size = tonumber(size), w = w }
end

local function stagedData(script, data, stage, value)
  if stage == data then return 'plain' end
  local m = chunkManifest(value)
  if not m or m.count < 1 or m.total < 1 or m.size < 1 then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': a staged value needs its manifest ' ..
      '(1:<total>:<count>:<chunk size>:<write id>), got ' .. shown(value))
  end
  local want = objectKey(data, 'stage')
  if not want or stage ~= want .. ':' .. m.w then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': the staging key of ' .. shown(data) ..
      ' for write ' .. shown(m.w) .. ' is ' .. shown(want and (want .. ':' .. m.w) or '?') .. ', got ' .. shown(stage))
  end
  local dataType = rcall('TYPE', data)['ok']
  if dataType == 'hash' and rcall('HGET', data, 'm') == value then return 'done' end
  local stageType = rcall('TYPE', stage)['ok']
  if stageType ~= 'hash' or rcall('HLEN', stage) ~= m.count + 1 or rcall('HEXISTS', stage, 'h') == 0 or rcall('HEXISTS', stage, m.w .. ':' .. (m.count - 1)) == 0 then
    return nil, redis.error_reply('PSR_REDIS_OPERATION ' .. script .. ': the chunks of write ' .. shown(m.w) ..
      ' are not all in their staging hash ' .. shown(stage) .. ' (it expired: a writer slower than its staging TTL?); nothing was written')
  end
  return 'staged'
end

local function writeData(data, stage, value, state, expiry, at)
  if state == 'done' then return end
  if state == 'plain' then
    if expiry == 'px' then rcall('SET', data, value, 'PX', at)
    elseif expiry == 'pxat' then rcall('SET', data, value, 'PXAT', at)
    elseif expiry == 'keep' then rcall('SET', data, value, 'KEEPTTL')
    else rcall('SET', data, value) end
    return
  end
  local keep = -1
  if expiry == 'keep' then keep = rcall('PEXPIRETIME', data) end
  rcall('HSET', stage, 'm', value)
  rcall('RENAME', stage, data)
  if expiry == 'px' then rcall('PEXPIRE', data, at)
  elseif expiry == 'pxat' then rcall('PEXPIREAT', data, at)
  elseif keep > 0 then rcall('PEXPIREAT', data, keep)
  else rcall('PERSIST', data) end
end
