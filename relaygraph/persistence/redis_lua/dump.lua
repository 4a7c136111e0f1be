-- Serialize every key of a thread atomically (DUMP payloads; false for a missing key).
local out = {}
for i = 1, #KEYS do out[i] = redis.call("DUMP", KEYS[i]) end
return out
