-- Applies one batch's changes to one partition of one tenant, atomically (one slot).
-- KEYS: 1 records hash, 2 groups hash, 3 group info, 4 pattern ranking, 5 unit counter,
--       6 band buckets hash, 7 family links hash.
-- ARGV: 1 band entries to add, 2 band entries to remove: each a run of (field: 2 bytes,
--       entry count: 2 bytes big-endian, that many 20-byte entries); then operations:
--   "U", member, record, info, repo tag, link  -- upsert a unit record; link: "" or T2..family
--   "R", member, T2                            -- remove a unit record
-- Returns one entry per operation: for "U" "1" (new member) or "0" (record replaced); for
-- "R" the removed record, or "" when the member was not stored.
-- Every hash is read once (HMGET of the records, groups and band fields the call touches) and
-- written once (HSET, and HDEL of what was emptied): a call runs a handful of commands however
-- many units it carries, and the replicas receive those few commands. Operations see each
-- other's effects in order, as if applied one by one.
-- A group (the units of one T2) is one field of the groups hash: 24-byte entries, the member
-- then its repository's tag, so the group's repository count is counted from it.
-- A unit whose record names a family other than its T2 holds one reference to the link
-- field T2..family of the links hash (see store/family.rs); the count follows upserts,
-- replacements and removals in the same call, so a retried batch leaves it as it was.
local RECORDS, GROUPS, INFO, RANKING, UNITS, BANDS, LINKS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local BAND_ENTRY, GROUP_ENTRY, MEMBER = 20, 24, 16
-- Fields per HMGET, HSET or HDEL: keeps unpack within Lua's stack limit.
local CHUNK = 500
local sub, find, byte = string.sub, string.find, string.byte

local function hmget(key, fields)
  local values = {}
  for from = 1, #fields, CHUNK do
    local part = redis.call("HMGET", key, unpack(fields, from, math.min(from + CHUNK - 1, #fields)))
    for n = 1, #part do
      values[from + n - 1] = part[n]
    end
  end
  return values
end
local function hset(key, pairs_list)
  for from = 1, #pairs_list, 2 * CHUNK do
    redis.call("HSET", key, unpack(pairs_list, from, math.min(from + 2 * CHUNK - 1, #pairs_list)))
  end
end
local function hdel(key, fields)
  for from = 1, #fields, CHUNK do
    redis.call("HDEL", key, unpack(fields, from, math.min(from + CHUNK - 1, #fields)))
  end
end
local function u32le(text, at)
  local a, b, c, d = byte(text, at, at + 3)
  return a + b * 256 + c * 65536 + d * 16777216
end
-- The family (16 hex characters) at the end of a record, or nil: the fields before it are
-- walked by their lengths (layout.rs, `encode`).
local function link_of(record)
  local at = 21 + tonumber(sub(record, 17, 20), 16)
  at = at + 4 + u32le(record, at) -- key
  at = at + 4 + u32le(record, at) -- language
  at = at + 12 + 256 -- tokens, lines, nesting, sketch
  local has_location = byte(record, at) ~= 0
  at = at + 1
  if has_location then
    at = at + 4 + u32le(record, at) -- path
    at = at + 4 + u32le(record, at) -- name
    at = at + 8 -- start and end line
  end
  local t2 = sub(record, 1, 16)
  if #record >= at + 15 then
    local family = sub(record, at, at + 15)
    if family ~= t2 then
      return t2 .. family
    end
  end
  return nil
end
local function change_link(link, delta)
  if link and link ~= "" and redis.call("HINCRBY", LINKS, link, delta) <= 0 then
    redis.call("HDEL", LINKS, link)
  end
end
-- Start of the `size`-byte entry beginning with `needle` in `value`, or nil (only
-- entry-aligned hits count).
local function find_entry(value, needle, size)
  local from = 1
  while true do
    local at = find(value, needle, from, true)
    if not at then
      return nil
    end
    if (at - 1) % size == 0 then
      return at
    end
    from = at + 1
  end
end

-- Prefetch: the records and groups the operations touch.
local ops_at = 3
local members, t2s, seen_member, seen_t2 = {}, {}, {}, {}
local i = ops_at
while i <= #ARGV do
  local op, member = ARGV[i], ARGV[i + 1]
  local t2
  if op == "U" then
    t2 = sub(ARGV[i + 2], 1, 16)
    i = i + 6
  else
    t2 = ARGV[i + 2]
    i = i + 3
  end
  if not seen_member[member] then
    seen_member[member] = true
    members[#members + 1] = member
  end
  if not seen_t2[t2] then
    seen_t2[t2] = true
    t2s[#t2s + 1] = t2
  end
end
local records, record_changed = {}, {}
if #members > 0 then
  local values = hmget(RECORDS, members)
  for n, member in ipairs(members) do
    records[member] = values[n] or false
  end
end
local groups, units_before, group_changed = {}, {}, {}
if #t2s > 0 then
  local values = hmget(GROUPS, t2s)
  for n, t2 in ipairs(t2s) do
    local value = values[n] or ""
    groups[t2] = value
    units_before[t2] = #value / GROUP_ENTRY
  end
end

local results = {}
local units_delta = 0
local new_infos = {}
i = ops_at
while i <= #ARGV do
  local op = ARGV[i]
  if op == "U" then
    local member, record, info, repo_tag, link = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
    i = i + 6
    local t2 = sub(record, 1, 16)
    local old = records[member]
    records[member] = record
    record_changed[member] = true
    local old_link = old and link_of(old) or ""
    if old_link ~= link then
      change_link(old_link, -1)
      change_link(link, 1)
    end
    if not old then
      local value = groups[t2]
      if value == "" then
        -- A new group: its info is the first unit's (as long as the group is not empty).
        new_infos[t2] = info
      end
      if not find_entry(value, member, GROUP_ENTRY) then
        groups[t2] = value .. member .. repo_tag
        group_changed[t2] = true
      end
      units_delta = units_delta + 1
      results[#results + 1] = "1"
    else
      results[#results + 1] = "0"
    end
  else
    local member, t2 = ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    local old = records[member]
    if old then
      records[member] = false
      record_changed[member] = true
      change_link(link_of(old), -1)
      local value = groups[t2]
      local at = find_entry(value, member, GROUP_ENTRY)
      if at then
        groups[t2] = sub(value, 1, at - 1) .. sub(value, at + GROUP_ENTRY)
        group_changed[t2] = true
      end
      units_delta = units_delta - 1
      results[#results + 1] = old
    else
      results[#results + 1] = ""
    end
  end
end

-- Records.
local record_writes, record_deletes = {}, {}
for _, member in ipairs(members) do
  if record_changed[member] then
    local record = records[member]
    if record then
      record_writes[#record_writes + 1] = member
      record_writes[#record_writes + 1] = record
    else
      record_deletes[#record_deletes + 1] = member
    end
  end
end
hset(RECORDS, record_writes)
hdel(RECORDS, record_deletes)
if units_delta ~= 0 then
  redis.call("INCRBY", UNITS, units_delta)
end

-- Groups, and patterns: groups of at least two units, ranked by repositories, then units, then
-- id; the score is negated so that ZRANGE (ascending, ties by member) lists the best first.
local group_writes, group_deletes, info_writes, ranked, unranked = {}, {}, {}, {}, {}
for _, t2 in ipairs(t2s) do
  if group_changed[t2] then
    local value = groups[t2]
    local units = #value / GROUP_ENTRY
    if units == 0 then
      group_deletes[#group_deletes + 1] = t2
      if units_before[t2] >= 2 then
        unranked[#unranked + 1] = t2
      end
    else
      group_writes[#group_writes + 1] = t2
      group_writes[#group_writes + 1] = value
      if new_infos[t2] then
        info_writes[#info_writes + 1] = t2
        info_writes[#info_writes + 1] = new_infos[t2]
      end
      if units >= 2 then
        local repos, seen = 0, {}
        for j = MEMBER + 1, #value, GROUP_ENTRY do
          local repo_tag = sub(value, j, j + GROUP_ENTRY - MEMBER - 1)
          if not seen[repo_tag] then
            seen[repo_tag] = true
            repos = repos + 1
          end
        end
        ranked[#ranked + 1] = string.format("%.0f", -(repos * 4294967296 + units))
        ranked[#ranked + 1] = t2
      elseif units_before[t2] >= 2 then
        unranked[#unranked + 1] = t2
      end
    end
  end
end
hset(GROUPS, group_writes)
hdel(GROUPS, group_deletes)
hset(INFO, info_writes)
hdel(INFO, group_deletes)
for from = 1, #ranked, 2 * CHUNK do
  redis.call("ZADD", RANKING, unpack(ranked, from, math.min(from + 2 * CHUNK - 1, #ranked)))
end
for from = 1, #unranked, CHUNK do
  redis.call("ZREM", RANKING, unpack(unranked, from, math.min(from + CHUNK - 1, #unranked)))
end

-- Band fields: every entry is kept once (a retried batch adds nothing twice), removals first.
local fields, band_adds, band_removes = {}, {}, {}
local function unpack_entries(pack, into)
  local at = 1
  while at <= #pack do
    local field = sub(pack, at, at + 1)
    local hi, lo = byte(pack, at + 2, at + 3)
    local length = (hi * 256 + lo) * BAND_ENTRY
    if into[field] == nil then
      if band_adds[field] == nil and band_removes[field] == nil then
        fields[#fields + 1] = field
      end
      into[field] = sub(pack, at + 4, at + 3 + length)
    else
      into[field] = into[field] .. sub(pack, at + 4, at + 3 + length)
    end
    at = at + 4 + length
  end
end
unpack_entries(ARGV[1], band_adds)
unpack_entries(ARGV[2], band_removes)
if #fields > 0 then
  local current = hmget(BANDS, fields)
  local writes, emptied = {}, {}
  for n, field in ipairs(fields) do
    local old = current[n] or ""
    local adds, removes = band_adds[field] or "", band_removes[field] or ""
    local new
    if removes == "" then
      -- Additions only (every ingest): append what the field does not hold yet.
      new = old
      for j = 1, #adds, BAND_ENTRY do
        local entry = sub(adds, j, j + BAND_ENTRY - 1)
        if not find_entry(new, entry, BAND_ENTRY) then
          new = new .. entry
        end
      end
    else
      local drop = {}
      for j = 1, #removes, BAND_ENTRY do
        drop[sub(removes, j, j + BAND_ENTRY - 1)] = true
      end
      local kept, seen = {}, {}
      for j = 1, #old, BAND_ENTRY do
        local entry = sub(old, j, j + BAND_ENTRY - 1)
        if not drop[entry] and not seen[entry] then
          seen[entry] = true
          kept[#kept + 1] = entry
        end
      end
      for j = 1, #adds, BAND_ENTRY do
        local entry = sub(adds, j, j + BAND_ENTRY - 1)
        if not seen[entry] then
          seen[entry] = true
          kept[#kept + 1] = entry
        end
      end
      new = table.concat(kept)
    end
    if new ~= old then
      if new == "" then
        emptied[#emptied + 1] = field
      else
        writes[#writes + 1] = field
        writes[#writes + 1] = new
      end
    end
  end
  hset(BANDS, writes)
  hdel(BANDS, emptied)
end
return results
