-- Register a superstep's tasks once (idempotent: a second registration is a no-op).
-- KEYS[1] step hash, KEYS[2] the run's hash (optional: it lists its steps' keys, for
-- Client.delete)
-- ARGV: run_id, graph, now_ms, then pairs (task_id, node name)
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if KEYS[2] then redis.call('HSET', KEYS[2], 'k:' .. KEYS[1], ARGV[3]) end
local total = (#ARGV - 3) / 2
redis.call('HSET', KEYS[1], 'run', ARGV[1], 'graph', ARGV[2], 'created', ARGV[3],
  'total', total, 'done', 0, 'state', 'running')
for i = 4, #ARGV, 2 do
  local tid = ARGV[i]
  redis.call('HSET', KEYS[1], 's:' .. tid, 'queued', 'e:' .. tid, 0, 'a:' .. tid, 0,
    'n:' .. tid, ARGV[i + 1], 'q:' .. tid, ARGV[3])
end
return 1
