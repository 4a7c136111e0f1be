-- Retention on one thread: delete checkpoints (with their pending writes), repair heads,
-- and garbage-collect blobs no remaining checkpoint reaches.
-- ARGV: ttl, mode, then for "prune": keep_last; for "runs": run id, run id, ...
-- Returns the number of checkpoints deleted.
local ttl, mode = tonumber(ARGV[1]), ARGV[2]
local doomed = {}  -- list of ns\0id members

if mode == "prune" then
  local keep = tonumber(ARGV[3])
  for _, ns in ipairs(redis.call("HKEYS", KEYS[HEADS])) do
    local members = redis.call("ZRANGE", KEYS[IX], "(" .. ns .. "\1", "[" .. ns .. SEP, "BYLEX", "REV")
    local head = ns .. SEP .. (redis.call("HGET", KEYS[HEADS], ns) or "")
    for i = keep + 1, #members do
      if members[i] ~= head then doomed[#doomed + 1] = members[i] end  -- the head always stays
    end
  end
elseif mode == "runs" then
  for i = 3, #ARGV do
    local prefix = ARGV[i] .. SEP
    local members = redis.call("ZRANGE", KEYS[RX], "[" .. prefix, "(" .. ARGV[i] .. "\1", "BYLEX")
    for _, m in ipairs(members) do doomed[#doomed + 1] = string.sub(m, #prefix + 1) end
  end
end
if #doomed == 0 then return 0 end

local touched = {}
for _, member in ipairs(doomed) do
  local cut = string.find(member, SEP, 1, true)
  local ns, id = string.sub(member, 1, cut - 1), string.sub(member, cut + 1)
  touched[ns] = true
  redis.call("HDEL", KEYS[HDR], member)
  redis.call("HDEL", KEYS[CV], member)
  redis.call("ZREM", KEYS[IX], member)
  redis.call("ZREM", KEYS[IXT], id .. SEP .. ns)
  local run = redis.call("HGET", KEYS[RUN], member)
  if run then
    redis.call("HDEL", KEYS[RUN], member)
    redis.call("ZREM", KEYS[RX], run .. SEP .. member)
  end
  local prefix = member .. SEP
  for _, m in ipairs(write_members(member)) do
    redis.call("HDEL", KEYS[WV], write_field(prefix, m))
    redis.call("ZREM", KEYS[WX], m)
  end
end

-- A namespace whose head was deleted falls back to its newest remaining checkpoint.
for ns, _ in pairs(touched) do
  local head = redis.call("HGET", KEYS[HEADS], ns)
  if head and redis.call("HEXISTS", KEYS[HDR], ns .. SEP .. head) == 0 then
    local newest = redis.call("ZRANGE", KEYS[IX], "(" .. ns .. "\1", "[" .. ns .. SEP, "BYLEX", "REV", "LIMIT", 0, 1)
    if #newest > 0 then
      redis.call("HSET", KEYS[HEADS], ns, string.sub(newest[1], #ns + 2))
    else
      redis.call("HDEL", KEYS[HEADS], ns)
    end
  end
end

-- Mark every blob reachable from a remaining checkpoint (following append bases), then
-- delete the rest.
local reachable = {}
local cvs = redis.call("HGETALL", KEYS[CV])
for i = 1, #cvs, 2 do
  local cut = string.find(cvs[i], SEP, 1, true)
  local ns = string.sub(cvs[i], 1, cut - 1)
  local parts = split(cvs[i + 1])
  for j = 1, #parts, 2 do
    local version = parts[j + 1]
    while version do
      local field = ns .. SEP .. parts[j] .. SEP .. version
      if reachable[field] then break end
      reachable[field] = true
      version = redis.call("HGET", KEYS[BASE], field)
    end
  end
end
for _, field in ipairs(redis.call("HKEYS", KEYS[BLOB])) do
  if not reachable[field] then
    redis.call("HDEL", KEYS[BLOB], field)
    redis.call("HDEL", KEYS[BASE], field)
  end
end
if redis.call("HLEN", KEYS[HEADS]) == 0 then
  for i = 1, #KEYS do redis.call("DEL", KEYS[i]) end
else
  refresh(ttl)
end
return #doomed
