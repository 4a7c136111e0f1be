-- Record a task's pending writes against one checkpoint.
-- ARGV: ttl, ns, checkpoint id, then per write: task id, index, replace ("1"/"0"), bytes.
-- First write per (task, index) wins; a replacing write (special channels) overwrites but
-- keeps its original position in the order.
local ttl, member = tonumber(ARGV[1]), ARGV[2] .. SEP .. ARGV[3]
local created = {}
for i = 4, #ARGV, 4 do
  local tail = ARGV[i] .. SEP .. ARGV[i + 1]
  local field = member .. SEP .. tail
  local new
  if ARGV[i + 2] == "1" then
    new = redis.call("HSET", KEYS[WV], field, ARGV[i + 3])
  else
    new = redis.call("HSETNX", KEYS[WV], field, ARGV[i + 3])
  end
  if new == 1 then created[#created + 1] = tail end
end
if #created > 0 then
  -- the new writes take the next sequence numbers, in order, in one INCRBY and one ZADD
  local first = redis.call("INCRBY", KEYS[SEQ], #created) - #created
  local members = {}
  for j, tail in ipairs(created) do
    members[#members + 1] = 0
    members[#members + 1] = member .. SEP .. string.format("%012d", first + j) .. SEP .. tail
  end
  call_many("ZADD", KEYS[WX], members, 2)
end
refresh(ttl)
return #created
