-- Confirm that tasks were put on the broker, so the sweeper can tell a task that waits in
-- a backlog ('sent': re-enqueued only after the queued grace) from one whose publisher died
-- before publishing ('queued': re-enqueued once its lease TTL has passed).
-- KEYS[1] step hash; ARGV: triples (task_id, epoch, broker id or '')
-- A task that has moved on (taken by a worker, or re-enqueued under a new epoch) is left.
local key = KEYS[1]
for i = 1, #ARGV, 3 do
  local tid = ARGV[i]
  if redis.call('HGET', key, 's:' .. tid) == 'queued'
      and redis.call('HGET', key, 'e:' .. tid) == ARGV[i + 1] then
    redis.call('HSET', key, 's:' .. tid, 'sent')
  end
  if ARGV[i + 2] ~= '' then redis.call('HSET', key, 'c:' .. tid, ARGV[i + 2]) end
end
return 1
