-- Applies unit upserts and removals to one partition of one tenant, atomically (one slot).
-- KEYS: 1 records hash, 2 group-repo unit counts, 3 group repo counts, 4 group info,
--       5 pattern ranking, 6 unit counter.
-- ARGV: 1 group set key prefix, then operations: "U", member, record, info | "R", member.
-- Returns one entry per operation: for "U" "1" (new member) or "0" (record replaced); for
-- "R" the removed record, or "" when the member was not stored.
local prefix = ARGV[1]
local results = {}
local touched = {}
local function parse(record)
  local length = tonumber(string.sub(record, 17, 20), 16)
  return string.sub(record, 1, 16), string.sub(record, 21, 20 + length)
end
local i = 2
while i <= #ARGV do
  local op, member = ARGV[i], ARGV[i + 1]
  if op == "U" then
    local record, info = ARGV[i + 2], ARGV[i + 3]
    i = i + 4
    local t2, repo = parse(record)
    if redis.call("HSET", KEYS[1], member, record) == 1 then
      redis.call("SADD", prefix .. t2, member)
      if redis.call("HINCRBY", KEYS[2], t2 .. repo, 1) == 1 then
        redis.call("HINCRBY", KEYS[3], t2, 1)
      end
      redis.call("HSETNX", KEYS[4], t2, info)
      redis.call("INCR", KEYS[6])
      touched[t2] = true
      results[#results + 1] = "1"
    else
      results[#results + 1] = "0"
    end
  else
    i = i + 2
    local old = redis.call("HGET", KEYS[1], member)
    if old then
      local t2, repo = parse(old)
      redis.call("HDEL", KEYS[1], member)
      redis.call("SREM", prefix .. t2, member)
      if redis.call("HINCRBY", KEYS[2], t2 .. repo, -1) <= 0 then
        redis.call("HDEL", KEYS[2], t2 .. repo)
        redis.call("HINCRBY", KEYS[3], t2, -1)
      end
      redis.call("DECR", KEYS[6])
      touched[t2] = true
      results[#results + 1] = old
    else
      results[#results + 1] = ""
    end
  end
end
-- Patterns are groups of at least two units, ranked by repositories, then units, then id:
-- the score is negated so that ZRANGE (ascending, ties by member) lists the best first.
for t2 in pairs(touched) do
  local units = redis.call("SCARD", prefix .. t2)
  if units == 0 then
    redis.call("HDEL", KEYS[3], t2)
    redis.call("HDEL", KEYS[4], t2)
    redis.call("ZREM", KEYS[5], t2)
  elseif units >= 2 then
    local repos = tonumber(redis.call("HGET", KEYS[3], t2) or "0")
    redis.call("ZADD", KEYS[5], string.format("%.0f", -(repos * 4294967296 + units)), t2)
  else
    redis.call("ZREM", KEYS[5], t2)
  end
end
return results
