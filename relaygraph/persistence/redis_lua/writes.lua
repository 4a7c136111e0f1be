-- Record a task's pending writes against one checkpoint.
-- ARGV: ttl, ns, checkpoint id, then per write: task id, index, replace ("1"/"0"), bytes.
-- First write per (task, index) wins; a replacing write (special channels) overwrites but
-- keeps its original position in the order.
local ttl, member = tonumber(ARGV[1]), ARGV[2] .. SEP .. ARGV[3]
local added = 0
for i = 4, #ARGV, 4 do
  local tail = ARGV[i] .. SEP .. ARGV[i + 1]
  local field = member .. SEP .. tail
  local created
  if ARGV[i + 2] == "1" then
    created = redis.call("HSET", KEYS[WV], field, ARGV[i + 3])
  else
    created = redis.call("HSETNX", KEYS[WV], field, ARGV[i + 3])
  end
  if created == 1 then
    local seq = redis.call("INCR", KEYS[SEQ])
    redis.call("ZADD", KEYS[WX], 0, member .. SEP .. string.format("%012d", seq) .. SEP .. tail)
    added = added + 1
  end
end
refresh(ttl)
return added
