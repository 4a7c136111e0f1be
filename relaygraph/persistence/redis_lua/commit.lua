-- Store one checkpoint and move its namespace's head, only if the head is as expected.
-- ARGV: ttl, ns, id, expect ("*" any head, "-" no head, "=" the id in ARGV[5]), expected id,
--       header, cv, run id ("" for none), then per blob: channel, version, base version
--       ("" for a full blob), bytes.
-- Returns {"ok"}, {"conflict", actual head or ""}, {"exists"} (the id is stored with other
-- content: checkpoints are immutable), {"missing_base", channel...} (append blobs whose base
-- is gone) or {"missing_blob", channel...} (versions nothing stores); all checks run before
-- the first write, so a refused commit stores nothing.
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

-- An append blob is only valid if its base is stored (it may have been pruned).
local missing, written = {}, {}
for i = 9, #ARGV, 4 do
  written[ARGV[i]] = true
  local base = ARGV[i + 2]
  if base ~= "" and redis.call("HEXISTS", KEYS[BLOB], ns .. SEP .. ARGV[i] .. SEP .. base) == 0 then
    missing[#missing + 1] = ARGV[i]
  end
end
if #missing > 0 then
  table.insert(missing, 1, "missing_base")
  return missing
end
-- Every channel version of the checkpoint must be readable: one the caller left out of
-- new_versions and that nothing stores yet has to be sent too.
local versions = split(ARGV[7])
for j = 1, #versions, 2 do
  local channel = versions[j]
  if not written[channel] and
      redis.call("HEXISTS", KEYS[BLOB], ns .. SEP .. channel .. SEP .. versions[j + 1]) == 0 then
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
-- (a version stored before as an append blob loses its stale base).
local blobs, bases, full = {}, {}, {}
for i = 9, #ARGV, 4 do
  local field = ns .. SEP .. ARGV[i] .. SEP .. ARGV[i + 1]
  blobs[#blobs + 1] = field
  blobs[#blobs + 1] = ARGV[i + 3]
  if ARGV[i + 2] ~= "" then
    bases[#bases + 1] = field
    bases[#bases + 1] = ARGV[i + 2]
  else
    full[#full + 1] = field
  end
end
call_many("HSET", KEYS[BLOB], blobs, 2)
call_many("HSET", KEYS[BASE], bases, 2)
call_many("HDEL", KEYS[BASE], full, 1)
local run = ARGV[8]
local old_run = redis.call("HGET", KEYS[RUN], member)
if old_run and old_run ~= run then redis.call("ZREM", KEYS[RX], old_run .. SEP .. member) end
if run ~= "" then
  redis.call("HSET", KEYS[RUN], member, run)
  redis.call("ZADD", KEYS[RX], 0, run .. SEP .. member)
elseif old_run then
  redis.call("HDEL", KEYS[RUN], member)
end
redis.call("HSET", KEYS[HEADS], ns, id)
refresh(ttl)
return {"ok"}
