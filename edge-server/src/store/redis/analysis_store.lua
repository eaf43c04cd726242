-- Stores analysis cache entries of one tenant (one slot), removes its expired ones, and
-- evicts its least recently used ones while it is over its budget.
-- KEYS: 1 last-use sorted set (member -> last use, microseconds), 2 sizes hash (member ->
--       charged bytes), 3 bookkeeping hash (`bytes`: the tenant's charged total, `clock`:
--       its last use clock), 4.. the entry keys of this call's entries.
-- ARGV: 1 TTL in milliseconds, 2 TTL in microseconds, 3 budget in bytes, 4 entry key prefix
--       (prefix .. member is an entry's key), 5 most removals this call, 6 bytes charged per
--       entry on top of its own, then a (member, entry) pair per entry key, in KEYS order.
-- Returns {stored or refreshed, 1 if still over budget after this call's removals else 0}.
-- Expired and evicted entries are reached through the members of the sorted set: their keys
-- are in this slot (same hash tag) but not in KEYS, as an eviction cannot know them in advance.
local LRU, SIZES, META = KEYS[1], KEYS[2], KEYS[3]
local ttl_ms, ttl_us, budget, prefix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local most_removals, overhead = tonumber(ARGV[5]), tonumber(ARGV[6])

local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local last = tonumber(redis.call("HGET", META, "clock") or "0")
if now <= last then now = last + 1 end
local now_text = string.format("%.0f", now)
local bytes = tonumber(redis.call("HGET", META, "bytes") or "0")
local removals = 0

local function remove(member)
  redis.call("DEL", prefix .. member)
  local size = tonumber(redis.call("HGET", SIZES, member) or "0")
  redis.call("HDEL", SIZES, member)
  redis.call("ZREM", LRU, member)
  bytes = bytes - size
  removals = removals + 1
end

-- Entries unused for the TTL: their keys have expired already; their bookkeeping goes now.
if ttl_us < now then
  local expired = redis.call("ZRANGEBYSCORE", LRU, "-inf", "(" .. string.format("%.0f", now - ttl_us), "LIMIT", 0, most_removals)
  for _, member in ipairs(expired) do
    remove(member)
  end
end

local stored = 0
for i = 4, #KEYS do
  local member, entry = ARGV[5 + 2 * (i - 3)], ARGV[6 + 2 * (i - 3)]
  local charged = #entry + overhead
  if charged <= budget then
    local old = redis.call("HGET", SIZES, member)
    if old and redis.call("EXISTS", KEYS[i]) == 1 then
      -- Held already: the same file under the same analysis key gives the same entry.
      redis.call("PEXPIRE", KEYS[i], ttl_ms)
    else
      redis.call("SET", KEYS[i], entry, "PX", ttl_ms)
      redis.call("HSET", SIZES, member, charged)
      bytes = bytes + charged - tonumber(old or "0")
    end
    redis.call("ZADD", LRU, now_text, member)
    stored = stored + 1
  end
end

while bytes > budget and removals < most_removals do
  local oldest = redis.call("ZRANGE", LRU, 0, 0)
  if #oldest == 0 then
    -- Nothing left to count: the total had drifted.
    bytes = 0
    break
  end
  remove(oldest[1])
end
if bytes < 0 then bytes = 0 end

redis.call("HSET", META, "clock", now_text, "bytes", string.format("%.0f", bytes))
for _, key in ipairs({LRU, SIZES, META}) do
  redis.call("PEXPIRE", key, ttl_ms)
end
local over = 0
if bytes > budget then over = 1 end
return {stored, over}
