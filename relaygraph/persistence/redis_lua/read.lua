-- Read checkpoints with everything needed to rebuild them, in one round trip.
-- ARGV: ttl, n, n blob fields the client already holds resolved (walks stop there), mode,
-- then for mode "head": ns; for mode "ids": ns, id, ns, id, ...
-- Returns {entries, blobs}: entries = {{ns, id, header, cv, {write bytes...}}...} (a missing
-- checkpoint has header false); blobs = flat {field, bytes, ...} of every blob the entries'
-- channel versions need, append chains followed through their plain base pointers, each
-- blob once.
local ttl, known = tonumber(ARGV[1]), tonumber(ARGV[2])
local seen = {}
for i = 3, 2 + known do seen[ARGV[i]] = true end
local at = 3 + known
local targets = {}
if ARGV[at] == "head" then
  local head = redis.call("HGET", KEYS[HEADS], ARGV[at + 1])
  if head then targets[1] = {ARGV[at + 1], head} end
else
  for i = at + 1, #ARGV, 2 do targets[#targets + 1] = {ARGV[i], ARGV[i + 1]} end
end

local entries, blobs = {}, {}
for _, target in ipairs(targets) do
  local ns, id = target[1], target[2]
  local member = ns .. SEP .. id
  local header = redis.call("HGET", KEYS[HDR], member)
  if header then
    local cv = redis.call("HGET", KEYS[CV], member) or ""
    local parts = split(cv)
    for j = 1, #parts, 2 do
      local version = parts[j + 1]
      while version do
        local field = ns .. SEP .. parts[j] .. SEP .. version
        if seen[field] then break end
        seen[field] = true
        local data = redis.call("HGET", KEYS[BLOB], field)
        if not data then break end
        blobs[#blobs + 1] = field
        blobs[#blobs + 1] = data
        version = redis.call("HGET", KEYS[BASE], field)
      end
    end
    local writes = {}
    local prefix = member .. SEP
    for _, m in ipairs(write_members(member)) do
      writes[#writes + 1] = redis.call("HGET", KEYS[WV], write_field(prefix, m)) or ""
    end
    entries[#entries + 1] = {ns, id, header, cv, writes}
  else
    entries[#entries + 1] = {ns, id, false}
  end
end
refresh(ttl)
return {entries, blobs}
