-- The references of a deduped object (dedupe: true). Its store key is
-- 'sha256.' followed by the URL-safe base64 SHA-256 of its stored bytes
-- (src/dedupe.ts), so equal bytes get the same key in every process, and the
-- key is its own hash tag. Beside its data key, its `refs` sorted set holds
-- one member per reference, scored by when that reference ends (Unix ms,
-- server clock; NO_END: when it is released):
--
--   p:<token>      a put's reference (its call token): ends at the put's ttl,
--                  or when store.evict takes it
--   l:<lifetime>   a lifetime's reference (one per lifetime): ends at its
--                  lease end, moved by its extends, or when its close
--                  releases it
--
-- The object lives while a reference does: its data key and `refs` expire
-- at the latest end (none while a reference has no end), and the script that
-- takes the last reference deletes both.
--@include shown
local NO_END = 9999999999999

-- dedupeScore(e): the end `e` (Unix ms) as the text of a score: a Lua number
-- passed to redis.call is printed with '%.17g', several times the cost of
-- '%d' (docs/performance.md).
local function dedupeScore(e)
  if e >= NO_END then return '9999999999999' end
  return string.format('%d', e)
end

-- dedupeKeys(script, data, refs): the store key of the deduped object whose
-- data key is `data`, when `refs` is its refs key; otherwise nil and the
-- PSR_INVALID_OPTIONS error reply.
local function dedupeKeys(script, data, refs)
  local prefix, member = string.match(data, '^([^{}]+:{sha256%.[%w_%-]+}:)d:(sha256%.[%w_%-]+)$')
  if not prefix or string.sub(prefix, -#member - 2) ~= member .. '}:' then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': KEYS[1] must be the data key of a deduped object (<ns>:{sha256.<hash>}:d:sha256.<hash>), got ' .. shown(data))
  end
  if refs ~= prefix .. 'refs:' .. member then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': KEYS[2] must be ' .. shown(prefix .. 'refs:' .. member) .. ', got ' .. shown(refs))
  end
  return member, nil, prefix
end

-- dedupeRef(script, ref): `ref` when it names a reference (p:<token of 16 to
-- 64 characters A-Z a-z 0-9 _ ->, or l:<lifetime id of 1 to 128 of them>);
-- otherwise nil and the PSR_INVALID_OPTIONS error reply.
local function dedupeRef(script, ref)
  local kind, id = string.match(type(ref) == 'string' and ref or '', '^([pl]):([%w_%-]+)$')
  if not kind or (kind == 'p' and (#id < 16 or #id > 64)) or #id > 128 then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': ref must be p:<token> or l:<lifetime id>, got ' .. shown(ref))
  end
  return ref
end

-- dedupeTypes(script, data, refs): nil when the data key is missing or a
-- string and `refs` missing or a sorted set; otherwise the PSR_SERIALIZATION
-- error reply (read before the first write, so nothing changes). Probed with
-- reads of one byte and of a count (GETRANGE, ZCARD: commands the minimal ACL
-- user has, where TYPE is not), which fail on a key of another type.
local function dedupeTypes(script, data, refs)
  local probes = {
    { data, 'a string', redis.pcall('GETRANGE', data, 0, 0) },
    { refs, 'a sorted set', redis.pcall('ZCARD', refs) },
  }
  for _, probe in ipairs(probes) do
    local reply = probe[3]
    if type(reply) == 'table' and reply.err then
      if not string.find(reply.err, 'WRONGTYPE', 1, true) then return reply end
      return redis.error_reply('PSR_SERIALIZATION ' .. script .. ': Redis key ' .. shown(probe[1]) ..
        ' holds another Redis type, not what proxystore-redis writes there (' .. probe[2] .. ')')
    end
  end
  return nil
end

-- dedupeSettle(data, refs, now): forget the references whose end passed,
-- then give the data key and `refs` the latest end of those left (no expiry
-- while one has none), or delete both when none is left. Returns 0 when none
-- is left (both deleted), 1 otherwise. (The latest end goes to PEXPIREAT as
-- ZRANGE gave it, text: no number formatting.)
local function dedupeSettle(data, refs, now)
  rcall('ZREMRANGEBYSCORE', refs, '-inf', now)
  local last = rcall('ZRANGE', refs, -1, -1, 'WITHSCORES')
  if #last == 0 then
    -- (Two single-key commands: a multi-key one is refused while the slot migrates.)
    rcall('UNLINK', data)
    rcall('UNLINK', refs)
    return 0
  end
  if tonumber(last[2]) >= NO_END then
    rcall('PERSIST', data)
    rcall('PERSIST', refs)
  else
    rcall('PEXPIREAT', data, last[2])
    rcall('PEXPIREAT', refs, last[2])
  end
  return 1
end

-- dedupeEnd(script, ttlArg, atArg): the end of a new reference: now +
-- ttlMs (server clock), or atMs, or NO_END when both are 0; nil and the
-- error reply for bad arguments (both given, out of range).
local function dedupeEnd(script, ttlArg, atArg)
  local ttl, err = intArg(script, 'ttlMs', ttlArg, 0, 9999999999999)
  if not ttl then return nil, err end
  local at, err2 = intArg(script, 'atMs', atArg, 0, 9999999999999)
  if not at then return nil, err2 end
  if ttl > 0 and at > 0 then
    return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': give ttlMs or atMs, not both')
  end
  if ttl > 0 then
    local now = nowMs()
    if now + ttl > NO_END then
      return nil, redis.error_reply('PSR_INVALID_OPTIONS ' .. script .. ': ttlMs ' .. ttl .. ' would end after 9999999999999 (Unix ms, the year 2286)')
    end
    return now + ttl
  end
  if at > 0 then return at end
  return NO_END
end

-- dedupeAddRef(refs, ref, e): record the reference `ref` ending at `e`. A
-- put's reference that is there already (this very call, sent again) keeps
-- the end its first run gave it; a lifetime's gets the end given now (its
-- lease end as it is now).
local function dedupeAddRef(refs, ref, e)
  local score = dedupeScore(e)
  if string.sub(ref, 1, 2) == 'p:' then
    rcall('ZADD', refs, 'NX', score, ref)
  else
    rcall('ZADD', refs, score, ref)
  end
end
