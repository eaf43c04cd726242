-- Applies one batch's changes to one partition of one tenant, atomically (one slot).
-- KEYS: 1 records hash, 2 groups hash, 3 group info, 4 pattern ranking, 5 unit counter,
--       6 band buckets hash, 7 family links hash.
-- ARGV: operations:
--   "U", member, record, info, repo tag  -- upsert a unit record
--   "R", member                          -- remove a unit record
--   "B", field, adds, removes            -- band entries (20 bytes each) to add to / remove from a field
-- Returns one entry per operation: for "U" "1" (new member) or "0" (record replaced); for
-- "R" the removed record, or "" when the member was not stored; for "B" "".
-- A group (the units of one T2) is one field of the groups hash: 24-byte entries, the member
-- then its repository's tag, so the group's repository count is counted from it. Groups and
-- band fields are read once per call and written with one HSET (and one HDEL for emptied
-- ones), so a call costs a few commands per unit however many entries it changes, and the
-- replicas receive those few commands.
-- A unit whose record names a family other than its T2 holds one reference to the link
-- field T2..family of the links hash (see store/family.rs); the count follows upserts,
-- replacements and removals in the same call, so a retried batch leaves it as it was.
local RECORDS, GROUPS, INFO, RANKING, UNITS, BANDS, LINKS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local BAND_ENTRY, GROUP_ENTRY, MEMBER = 20, 24, 16
local results = {}
local units_delta = 0
local band_ops = {}
local groups, changed, units_before = {}, {}, {}
local function parse(record)
  local length = tonumber(string.sub(record, 17, 20), 16)
  return string.sub(record, 1, 16), string.sub(record, 21, 20 + length)
end
local function u32le(text, at)
  local a, b, c, d = string.byte(text, at, at + 3)
  return a + b * 256 + c * 65536 + d * 16777216
end
-- The family (16 hex characters) at the end of a record, or nil: the fields before it are
-- walked by their lengths (layout.rs, `encode`).
local function family_of(record)
  local at = 21 + tonumber(string.sub(record, 17, 20), 16)
  at = at + 4 + u32le(record, at) -- key
  at = at + 4 + u32le(record, at) -- language
  at = at + 12 + 256 -- tokens, lines, nesting, sketch
  local has_location = string.byte(record, at) ~= 0
  at = at + 1
  if has_location then
    at = at + 4 + u32le(record, at) -- path
    at = at + 4 + u32le(record, at) -- name
    at = at + 8 -- start and end line
  end
  if #record >= at + 15 then
    return string.sub(record, at, at + 15)
  end
  return nil
end
local function link_of(record)
  local family = family_of(record)
  local t2 = string.sub(record, 1, 16)
  if family and family ~= t2 then
    return t2 .. family
  end
  return nil
end
local function change_link(link, delta)
  if link and redis.call("HINCRBY", LINKS, link, delta) <= 0 then
    redis.call("HDEL", LINKS, link)
  end
end
local function group(t2)
  local value = groups[t2]
  if value == nil then
    value = redis.call("HGET", GROUPS, t2) or ""
    groups[t2] = value
    units_before[t2] = #value / GROUP_ENTRY
  end
  return value
end
-- Start of the `size`-byte entry beginning with `needle` in `value`, or nil (only
-- entry-aligned hits count).
local function find_entry(value, needle, size)
  local from = 1
  while true do
    local at = string.find(value, needle, from, true)
    if not at then
      return nil
    end
    if (at - 1) % size == 0 then
      return at
    end
    from = at + 1
  end
end
local function find_member(value, member)
  return find_entry(value, member, GROUP_ENTRY)
end
local i = 1
while i <= #ARGV do
  local op = ARGV[i]
  if op == "U" then
    local member, record, info, repo_tag = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    i = i + 5
    local t2 = string.sub(record, 1, 16)
    local old = redis.call("HGET", RECORDS, member)
    redis.call("HSET", RECORDS, member, record)
    local old_link, new_link = old and link_of(old), link_of(record)
    if old_link ~= new_link then
      change_link(old_link, -1)
      change_link(new_link, 1)
    end
    if not old then
      local value = group(t2)
      if value == "" then
        -- A new group: its info is the first unit's (as long as the group is not empty).
        redis.call("HSET", INFO, t2, info)
      end
      if not find_member(value, member) then
        groups[t2] = value .. member .. repo_tag
        changed[t2] = true
      end
      units_delta = units_delta + 1
      results[#results + 1] = "1"
    else
      results[#results + 1] = "0"
    end
  elseif op == "R" then
    local member = ARGV[i + 1]
    i = i + 2
    local old = redis.call("HGET", RECORDS, member)
    if old then
      local t2 = parse(old)
      redis.call("HDEL", RECORDS, member)
      change_link(link_of(old), -1)
      local value = group(t2)
      local at = find_member(value, member)
      if at then
        groups[t2] = string.sub(value, 1, at - 1) .. string.sub(value, at + GROUP_ENTRY)
        changed[t2] = true
      end
      units_delta = units_delta - 1
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
  redis.call("INCRBY", UNITS, units_delta)
end
-- Groups, and patterns: groups of at least two units, ranked by repositories, then units, then
-- id; the score is negated so that ZRANGE (ascending, ties by member) lists the best first.
local group_writes = {}
for t2 in pairs(changed) do
  local value = groups[t2]
  local units = #value / GROUP_ENTRY
  if units == 0 then
    redis.call("HDEL", GROUPS, t2)
    redis.call("HDEL", INFO, t2)
    redis.call("ZREM", RANKING, t2)
  else
    group_writes[#group_writes + 1] = t2
    group_writes[#group_writes + 1] = value
    if units >= 2 then
      local repos, seen = 0, {}
      for j = MEMBER + 1, #value, GROUP_ENTRY do
        local repo_tag = string.sub(value, j, j + GROUP_ENTRY - MEMBER - 1)
        if not seen[repo_tag] then
          seen[repo_tag] = true
          repos = repos + 1
        end
      end
      redis.call("ZADD", RANKING, string.format("%.0f", -(repos * 4294967296 + units)), t2)
    elseif units_before[t2] >= 2 then
      redis.call("ZREM", RANKING, t2)
    end
  end
end
if #group_writes > 0 then
  redis.call("HSET", GROUPS, unpack(group_writes))
end
-- Band fields: every entry is kept once (a retried batch adds nothing twice), removals first.
if #band_ops > 0 then
  local fields = {}
  for n, at in ipairs(band_ops) do
    fields[n] = ARGV[at + 1]
  end
  local current = redis.call("HMGET", BANDS, unpack(fields))
  local writes, emptied = {}, {}
  for n, at in ipairs(band_ops) do
    local old = current[n] or ""
    local adds, removes = ARGV[at + 2], ARGV[at + 3]
    local new
    if removes == "" then
      -- Additions only (every ingest): append what the field does not hold yet.
      new = old
      for j = 1, #adds, BAND_ENTRY do
        local entry = string.sub(adds, j, j + BAND_ENTRY - 1)
        if not find_entry(new, entry, BAND_ENTRY) then
          new = new .. entry
        end
      end
    else
      local drop = {}
      for j = 1, #removes, BAND_ENTRY do
        drop[string.sub(removes, j, j + BAND_ENTRY - 1)] = true
      end
      local kept, seen = {}, {}
      for j = 1, #old, BAND_ENTRY do
        local entry = string.sub(old, j, j + BAND_ENTRY - 1)
        if not drop[entry] and not seen[entry] then
          seen[entry] = true
          kept[#kept + 1] = entry
        end
      end
      for j = 1, #adds, BAND_ENTRY do
        local entry = string.sub(adds, j, j + BAND_ENTRY - 1)
        if not seen[entry] then
          seen[entry] = true
          kept[#kept + 1] = entry
        end
      end
      new = table.concat(kept)
    end
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
    redis.call("HSET", BANDS, unpack(writes))
  end
  if #emptied > 0 then
    redis.call("HDEL", BANDS, unpack(emptied))
  end
end
return results
