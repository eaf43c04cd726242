-- Reads analysis cache entries of one tenant (one slot) and refreshes the ones found.
-- KEYS: 1 last-use sorted set, 2 sizes hash, 3 bookkeeping hash (`bytes`, `clock`),
--       4.. the entry keys, one per looked-up hash.
-- ARGV: 1 TTL in milliseconds, 2 reply bytes after which no further entry is read, then one
--       sorted-set member per entry key, in the same order.
-- Returns one value per entry key read, in order: the entry, or nil for a miss. Keys are read
-- until the reply holds the given bytes (at least one key), so that one call's reply (and the
-- time the master spends building it) stays bounded; the caller asks again for the keys not
-- read. A hit gets a new last use
-- (the tenant's clock: the master's TIME in microseconds, never repeating) and its TTL again,
-- and so does the bookkeeping, so that it outlives every entry it counts. A lookup without
-- hits writes nothing.
local LRU, SIZES, META = KEYS[1], KEYS[2], KEYS[3]
local ttl_ms, reply_bytes = ARGV[1], tonumber(ARGV[2])
local found, hits = {}, {}
local replied = 0
for i = 4, #KEYS do
  if i > 4 and replied >= reply_bytes then break end
  local value = redis.call("GET", KEYS[i])
  if value then
    found[i - 3] = value
    hits[#hits + 1] = i
    replied = replied + #value
  else
    found[i - 3] = false
  end
end
if #hits > 0 then
  local time = redis.call("TIME")
  local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local last = tonumber(redis.call("HGET", META, "clock") or "0")
  if now <= last then now = last + 1 end
  local now_text = string.format("%.0f", now)
  redis.call("HSET", META, "clock", now_text)
  for _, i in ipairs(hits) do
    redis.call("ZADD", LRU, "XX", now_text, ARGV[i - 1])
    redis.call("PEXPIRE", KEYS[i], ttl_ms)
  end
  for _, key in ipairs({LRU, SIZES, META}) do
    redis.call("PEXPIRE", key, ttl_ms)
  end
end
return found
