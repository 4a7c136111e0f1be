-- One window of history, newest first: index members and their headers.
-- ARGV: ttl, index ("ix" per namespace, "ixt" thread-wide), max bound, min bound, count.
-- Returns flat {member, header, member, header, ...}.
local ttl = tonumber(ARGV[1])
local key = KEYS[IX]
if ARGV[2] == "ixt" then key = KEYS[IXT] end
local members = redis.call("ZRANGE", key, ARGV[3], ARGV[4], "BYLEX", "REV", "LIMIT", 0, ARGV[5])
local out = {}
for _, m in ipairs(members) do
  local hdr_field = m
  if ARGV[2] == "ixt" then
    -- id\0ns -> ns\0id
    local cut = string.find(m, SEP, 1, true)
    hdr_field = string.sub(m, cut + 1) .. SEP .. string.sub(m, 1, cut - 1)
  end
  out[#out + 1] = m
  out[#out + 1] = redis.call("HGET", KEYS[HDR], hdr_field) or ""
end
refresh(ttl)
return out
