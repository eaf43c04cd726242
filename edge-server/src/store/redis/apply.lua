-- Applies one batch's changes to one partition of one tenant, atomically (one slot).
-- KEYS: 1 records hash, 2 group-repo unit counts, 3 group repo counts, 4 group info,
--       5 pattern ranking, 6 unit counter, 7 band buckets hash.
-- ARGV: 1 group set key prefix, then operations:
--   "U", member, record, info  -- upsert a unit record
--   "R", member                -- remove a unit record
--   "B", field, adds, removes  -- band entries (20 bytes each) to add to / remove from a field
-- Returns one entry per operation: for "U" "1" (new member) or "0" (record replaced); for
-- "R" the removed record, or "" when the member was not stored; for "B" "".
-- Band fields are read with one HMGET and written with one HSET (and one HDEL for emptied
-- fields), so a script call costs a few commands however many band entries it changes, and
-- the replicas receive those few commands.
local prefix = ARGV[1]
local ENTRY = 20
local results = {}
local touched = {}
local units_delta = 0
local band_ops = {}
local function parse(record)
  local length = tonumber(string.sub(record, 17, 20), 16)
  return string.sub(record, 1, 16), string.sub(record, 21, 20 + length)
end
local i = 2
while i <= #ARGV do
  local op = ARGV[i]
  if op == "U" then
    local member, record, info = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    i = i + 4
    local t2, repo = parse(record)
    if redis.call("HSET", KEYS[1], member, record) == 1 then
      redis.call("SADD", prefix .. t2, member)
      if redis.call("HINCRBY", KEYS[2], t2 .. repo, 1) == 1 then
        redis.call("HINCRBY", KEYS[3], t2, 1)
      end
      redis.call("HSETNX", KEYS[4], t2, info)
      units_delta = units_delta + 1
      touched[t2] = true
      results[#results + 1] = "1"
    else
      results[#results + 1] = "0"
    end
  elseif op == "R" then
    local member = ARGV[i + 1]
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
      units_delta = units_delta - 1
      touched[t2] = true
      results[#results + 1] = old
    else
      results[#results + 1] = ""
    end
  else
    band_ops[#band_ops + 1] = i
    i = i + 4
    results[#results + 1] = ""
  end
end
if units_delta ~= 0 then
  redis.call("INCRBY", KEYS[6], units_delta)
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
-- Band fields: every entry is kept once (a retried batch adds nothing twice), removals first.
if #band_ops > 0 then
  local fields = {}
  for n, at in ipairs(band_ops) do
    fields[n] = ARGV[at + 1]
  end
  local current = redis.call("HMGET", KEYS[7], unpack(fields))
  local writes, emptied = {}, {}
  for n, at in ipairs(band_ops) do
    local old = current[n] or ""
    local adds, removes = ARGV[at + 2], ARGV[at + 3]
    local drop = {}
    for j = 1, #removes, ENTRY do
      drop[string.sub(removes, j, j + ENTRY - 1)] = true
    end
    local kept, seen = {}, {}
    for j = 1, #old, ENTRY do
      local entry = string.sub(old, j, j + ENTRY - 1)
      if not drop[entry] and not seen[entry] then
        seen[entry] = true
        kept[#kept + 1] = entry
      end
    end
    for j = 1, #adds, ENTRY do
      local entry = string.sub(adds, j, j + ENTRY - 1)
      if not seen[entry] then
        seen[entry] = true
        kept[#kept + 1] = entry
      end
    end
    local new = table.concat(kept)
    if new ~= old then
      if new == "" then
        emptied[#emptied + 1] = fields[n]
      else
        writes[#writes + 1] = fields[n]
        writes[#writes + 1] = new
      end
    end
  end
  if #writes > 0 then
    redis.call("HSET", KEYS[7], unpack(writes))
  end
  if #emptied > 0 then
    redis.call("HDEL", KEYS[7], unpack(emptied))
  end
end
return results
