-- Restore DUMP payloads into an empty thread. ARGV: ttl, then one payload per key ("" for
-- a key that did not exist). Returns "exists" (and writes nothing) if the thread has checkpoints.
local ttl = tonumber(ARGV[1])
if redis.call("EXISTS", KEYS[HDR]) > 0 then return "exists" end
for i = 1, #KEYS do
  if ARGV[i + 1] ~= "" then
    redis.call("DEL", KEYS[i])
    redis.call("RESTORE", KEYS[i], ttl * 1000, ARGV[i + 1])
  end
end
return "ok"
