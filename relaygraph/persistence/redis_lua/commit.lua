-- Store one checkpoint and move its namespace's head, only if the head is as expected.
-- ARGV: ttl, ns, id, expect ("*" any head, "-" no head, "=" the id in ARGV[5]), expected id,
--       header, cv, run id ("" for none), then per blob: channel, version, base version
--       ("" for a full blob; "\0start\0base version" for a sealed chunk), bytes.
-- Returns {"ok"}, {"conflict", actual head or ""}, {"exists"} (the id is stored with other
-- content: checkpoints are immutable), {"missing_base", channel...} (append blobs whose base
-- is gone), {"missing_chunks", channel...} (sealed chunks with no chunk before them: send
-- the list's chunks from the start) or {"missing_blob", channel...} (versions nothing
-- stores); all checks run before the first write, so a refused commit stores nothing.
-- A sealed chunk (redis.py's _chunk_args): items [start, end) of an append-only list,
-- stored once as an append blob on the synthetic version "<version>\0<end>", so that a
-- cold read walks a few chunks instead of one blob per step. Its base is the chunk of the
-- same lineage ending at ``start``: none for the first chunk, the one before it in this
-- commit, or the one found walking down the append blobs from ``below`` (the base of the
-- version being written) while each keeps at least ``start`` items of its base. Returns
-- that base ("" for none), or nil when the lineage has no such chunk (stored by an older
-- layout, or after a rewrite): the client then seals the list's chunks from the start.
local function chunk_link(ns, channel, version, arg, sealed)
  local cut = string.find(arg, SEP, 2, true)
  local start, below = tonumber(string.sub(arg, 2, cut - 1)), string.sub(arg, cut + 1)
  local sep = string.find(version, SEP, 1, true)
  local previous = sealed[channel]
  sealed[channel] = {version, tonumber(string.sub(version, sep + 1))}
  if start == 0 then return "", start end
  if previous and previous[2] == start then return previous[1], start end
  local field = ns .. SEP .. channel .. SEP .. below
  for _ = 1, 512 do
    local data = redis.call("HGET", KEYS[BLOB], field)
    if not data or string.sub(data, 1, 1) ~= "A" then return nil end
    local b1, b2, b3, b4 = string.byte(data, 2, 5)
    local size = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    local ok, base = pcall(cmsgpack.unpack, string.sub(data, 6, 5 + size))
    if not ok or type(base) ~= "table" or type(base[1]) ~= "string" or
        type(base[2]) ~= "number" or base[2] < start then
      return nil
    end
    local at = string.find(base[1], SEP, 1, true)
    if at then
      if tonumber(string.sub(base[1], at + 1)) == start then return base[1], start end
      return nil
    end
    field = ns .. SEP .. channel .. SEP .. base[1]
  end
  return nil
end

local ttl, ns, id = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local expect, expected = ARGV[4], ARGV[5]
-- The same checkpoint again (a retry whose first reply was lost) is a no-op: checked before
-- the compare-and-set, which the first attempt already moved.
local stored = redis.call("HGET", KEYS[HDR], ns .. SEP .. id)
if stored and stored == ARGV[6] then return {"ok"} end
local head = redis.call("HGET", KEYS[HEADS], ns)
if expect == "-" and head then return {"conflict", head} end
if expect == "=" and head ~= expected then return {"conflict", head or ""} end
if stored then return {"exists"} end

-- An append blob is only valid if its base is stored (it may have been pruned) or comes
-- in this commit (a sealed chunk, whose base argument is "\0start\0base version").
local missing, written, fields, links, unlinked, sealed = {}, {}, {}, {}, {}, {}
for i = 9, #ARGV, 4 do fields[ns .. SEP .. ARGV[i] .. SEP .. ARGV[i + 1]] = true end
for i = 9, #ARGV, 4 do
  written[ARGV[i]] = true
  local base = ARGV[i + 2]
  if string.byte(base, 1) == 0 then
    local link, start = chunk_link(ns, ARGV[i], ARGV[i + 1], base, sealed)
    if link then links[i] = {link, start} else unlinked[#unlinked + 1] = ARGV[i] end
  else
    local field = ns .. SEP .. ARGV[i] .. SEP .. base
    if base ~= "" and not fields[field] and redis.call("HEXISTS", KEYS[BLOB], field) == 0 then
      missing[#missing + 1] = ARGV[i]
    end
  end
end
if #missing > 0 then
  table.insert(missing, 1, "missing_base")
  return missing
end
if #unlinked > 0 then
  table.insert(unlinked, 1, "missing_chunks")
  return unlinked
end
-- Every channel version of the checkpoint must be readable: one the caller left out of
-- new_versions and that nothing stores yet has to be sent too.
local versions, unwritten = split(ARGV[7]), {}
for j = 1, #versions, 2 do
  if not written[versions[j]] then unwritten[#unwritten + 1] = j end
end
-- A version the namespace's head also has is stored: a head always names a stored
-- checkpoint, whose versions were checked at its commit and stay readable (drop.lua keeps
-- every blob a remaining checkpoint reaches; all keys share one expiry). One read of the
-- head's versions replaces an HEXISTS per unwritten channel when there are several.
local on_head = {}
if head and #unwritten > 1 then
  local head_versions = redis.call("HGET", KEYS[CV], ns .. SEP .. head)
  if head_versions then
    local parts = split(head_versions)
    for j = 1, #parts, 2 do on_head[parts[j] .. SEP .. parts[j + 1]] = true end
  end
end
for _, j in ipairs(unwritten) do
  local channel = versions[j]
  local pair = channel .. SEP .. versions[j + 1]
  if not on_head[pair] and redis.call("HEXISTS", KEYS[BLOB], ns .. SEP .. pair) == 0 then
    missing[#missing + 1] = channel
  end
end
if #missing > 0 then
  table.insert(missing, 1, "missing_blob")
  return missing
end

local member = ns .. SEP .. id
redis.call("HSET", KEYS[HDR], member, ARGV[6])
redis.call("HSET", KEYS[CV], member, ARGV[7])
redis.call("ZADD", KEYS[IX], 0, member)
redis.call("ZADD", KEYS[IXT], 0, id .. SEP .. ns)
-- One HSET for the blobs, one for the bases of append blobs, one HDEL for full blobs
-- (a version stored before as an append blob loses its stale base). Sealed chunks get
-- their base (the chunk before them) and their blob header here: see chunk_link.
local blobs, bases, full = {}, {}, {}
for i = 9, #ARGV, 4 do
  local channel, base, data = ARGV[i], ARGV[i + 2], ARGV[i + 3]
  local field = ns .. SEP .. channel .. SEP .. ARGV[i + 1]
  if links[i] then  -- a sealed chunk: its base and blob header are made here
    base = links[i][1]
    if base == "" then
      data = "F" .. data
    else
      local head = cmsgpack.pack({base, links[i][2]})
      data = "A" .. struct.pack(">I4", #head) .. head .. data
    end
  end
  blobs[#blobs + 1] = field
  blobs[#blobs + 1] = data
  if base ~= "" then
    bases[#bases + 1] = field
    bases[#bases + 1] = base
  else
    full[#full + 1] = field
  end
end
-- A base field is only ever stored (and dropped) with its blob field: when every blob
-- field is new (HSET counts them), no stale base can exist and the HDEL is skipped.
local new_blobs = call_many("HSET", KEYS[BLOB], blobs, 2)
call_many("HSET", KEYS[BASE], bases, 2)
if new_blobs < #blobs / 2 then call_many("HDEL", KEYS[BASE], full, 1) end
-- The checkpoint is new (its header is not stored, checked above), and a run field is
-- only ever stored (and dropped, and expired) with its header: there is no old run entry.
local run = ARGV[8]
if run ~= "" then
  redis.call("HSET", KEYS[RUN], member, run)
  redis.call("ZADD", KEYS[RX], 0, run .. SEP .. member)
end
redis.call("HSET", KEYS[HEADS], ns, id)
refresh(ttl)
return {"ok"}
