-- Move a run to a final (or interrupted) status and hand the thread to the next queued run.
-- KEYS[1] thread's active-run key, KEYS[2] run hash, KEYS[3] thread's run queue
-- ARGV: run_id, status, now_ms, error text
-- A run already cancelled keeps that status. Returns the next run id to start, or ''.
local status = redis.call('HGET', KEYS[2], 'status')
if status ~= 'cancelled' then
  redis.call('HSET', KEYS[2], 'status', ARGV[2], 'updated', ARGV[3], 'error', ARGV[4])
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return '' end
local next_run = redis.call('LPOP', KEYS[3])
if next_run then
  redis.call('SET', KEYS[1], next_run)
  return next_run
end
redis.call('DEL', KEYS[1])
return ''
