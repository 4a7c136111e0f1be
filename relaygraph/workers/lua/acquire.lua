-- Take the lease of a task before running it.
-- KEYS[1] step hash, KEYS[2] the run's hash (a run no longer active runs nothing more)
-- ARGV: task_id, epoch, now_ms, ttl_ms, max_attempts, worker
-- Returns {status, epoch, attempts[, last[, first]]}:
--   ok: run it under the returned epoch (first: when its first attempt took the lease, ms;
--   kept in the step hash as f:<task> for the attempts after it); finished/stale/busy/
--   cancelled/missing: do nothing; exhausted: the attempt budget is spent, the task is now
--   failed (last = 1 when it was the step's last open task, so the caller runs the
--   barrier).
local key, tid = KEYS[1], ARGV[1]
local epoch, now, ttl, max_attempts = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local task = redis.call('HMGET', key, 'state', 's:' .. tid, 'e:' .. tid, 'a:' .. tid, 'd:' .. tid,
  'f:' .. tid)
local state, status = task[1], task[2]
if not state then return {'missing', 0, 0} end  -- every registered step has a state
if state == 'cancelled' then return {'cancelled', 0, 0} end
local run_status = redis.call('HGET', KEYS[2], 'status')
if run_status and run_status ~= 'pending' and run_status ~= 'running' then
  return {'cancelled', 0, 0}
end
if not status then return {'missing', 0, 0} end
local current = tonumber(task[3])
local attempts = tonumber(task[4])
if status == 'done' or status == 'error' or status == 'interrupted' then
  return {'finished', current, attempts}
end
if epoch ~= current then return {'stale', current, attempts} end
if status == 'running' then
  local deadline = tonumber(task[5] or '0')
  if deadline > now then return {'busy', current, attempts} end
  -- the holder's lease expired (its worker died): take over under a new epoch
  current = current + 1
  redis.call('HSET', key, 'e:' .. tid, current)
end
attempts = attempts + 1
if attempts > max_attempts then
  redis.call('HSET', key, 's:' .. tid, 'error', 'x:' .. tid,
    'gave up after ' .. (attempts - 1) .. ' attempts (the worker running it died each time)')
  local done = redis.call('HINCRBY', key, 'done', 1)
  local last = 0
  if done >= tonumber(redis.call('HGET', key, 'total')) then
    redis.call('HSET', key, 'state', 'barrier', 'bd', now + ttl)
    last = 1
  end
  return {'exhausted', current, attempts, last}
end
local first = tonumber(task[6])
if not first then
  first = now
  redis.call('HSET', key, 's:' .. tid, 'running', 'a:' .. tid, attempts, 'd:' .. tid, now + ttl,
    'w:' .. tid, ARGV[6], 'f:' .. tid, now)
else
  redis.call('HSET', key, 's:' .. tid, 'running', 'a:' .. tid, attempts, 'd:' .. tid, now + ttl,
    'w:' .. tid, ARGV[6])
end
return {'ok', current, attempts, 0, first}
