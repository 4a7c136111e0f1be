-- Record that a task finished (done / error / interrupted) under its lease epoch.
-- KEYS[1] step hash; ARGV: task_id, epoch, status, now_ms, ttl_ms
-- Returns 'last' when this was the step's last open task (the caller runs the barrier),
-- 'ok', 'dup' (already recorded: a duplicate delivery) or 'stale' (fenced out).
local key, tid = KEYS[1], ARGV[1]
local status = redis.call('HGET', key, 's:' .. tid)
if not status then return 'stale' end
if status == 'done' or status == 'error' or status == 'interrupted' then return 'dup' end
if tonumber(redis.call('HGET', key, 'e:' .. tid)) ~= tonumber(ARGV[2]) then return 'stale' end
redis.call('HSET', key, 's:' .. tid, ARGV[3])
local done = redis.call('HINCRBY', key, 'done', 1)
if done >= tonumber(redis.call('HGET', key, 'total')) then
  redis.call('HSET', key, 'state', 'barrier', 'bd', tonumber(ARGV[4]) + tonumber(ARGV[5]))
  return 'last'
end
return 'ok'
