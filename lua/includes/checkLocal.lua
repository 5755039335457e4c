-- checkLocal(keys): make sure every key in `keys` (keys this script derives
-- instead of declaring them: a lifetime's own members' data keys) can be
-- touched on this node, before the script writes anything. While a Redis
-- Cluster slot migrates, a key that already left the node (or, on the
-- importing node, one that has not arrived yet) makes Redis stop the script
-- ("Script attempted to access a non local key"); asking for the keys in a
-- multi-key EXISTS together with the declared KEYS[1] raises that error here,
-- where nothing is written yet, instead of half-way (a single-key command on
-- the importing node would be served, the missing key taken for deleted). The
-- caller sends the same call again once the migration is over. A slot that is
-- not migrating makes this a cheap read; so does a single Redis.
local function checkLocal(keys)
  for i = 1, #keys, 1000 do
    rcall('EXISTS', KEYS[1], unpack(keys, i, math.min(i + 999, #keys)))
  end
end
