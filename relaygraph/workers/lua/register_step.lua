-- Register a superstep's tasks once (idempotent: a second registration is a no-op).
-- KEYS[1] step hash, KEYS[2] the run's hash (optional: it lists its steps' keys, for
-- Client.delete)
-- ARGV: run_id, graph, now_ms, then pairs (task_id, node name)
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if KEYS[2] then redis.call('HSET', KEYS[2], 'k:' .. KEYS[1], ARGV[3]) end
local total = (#ARGV - 3) / 2
-- The step's fields and every task's in one HSET (in chunks of at most 100 tasks, so
-- unpack stays far below Lua's stack limit): one command instead of one per task.
local fields = {'run', ARGV[1], 'graph', ARGV[2], 'created', ARGV[3],
  'total', total, 'done', 0, 'state', 'running'}
for i = 4, #ARGV, 2 do
  local tid, n = ARGV[i], #fields
  fields[n + 1], fields[n + 2] = 's:' .. tid, 'queued'
  fields[n + 3], fields[n + 4] = 'e:' .. tid, 0
  fields[n + 5], fields[n + 6] = 'a:' .. tid, 0
  fields[n + 7], fields[n + 8] = 'n:' .. tid, ARGV[i + 1]
  fields[n + 9], fields[n + 10] = 'q:' .. tid, ARGV[3]
  if n + 10 >= 1000 then
    redis.call('HSET', KEYS[1], unpack(fields))
    fields = {}
  end
end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
return 1
