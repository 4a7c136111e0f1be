-- Create a run record and decide what happens with the thread's active run.
-- KEYS[1] thread's active-run key, KEYS[2] new run hash, KEYS[3] thread's run queue,
-- KEYS[4] the thread's run index (optional: unfinished runs score +inf there)
-- ARGV: run_id, strategy (reject|enqueue|interrupt|rollback), now_ms, then field/value pairs
-- Returns {'start'} (no active run: this one is now active), {'reject', active},
-- {'queued', active}, or {'interrupt'|'rollback', previous active} (this one is now active).
local run_id, strategy, now = ARGV[1], ARGV[2], ARGV[3]
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
local active = redis.call('GET', KEYS[1])
if active and strategy == 'reject' then return {'reject', active} end
redis.call('HSET', KEYS[2], 'status', 'pending', 'created', now, 'updated', now, unpack(fields))
if KEYS[4] then redis.call('ZADD', KEYS[4], '+inf', run_id) end
if not active then
  redis.call('SET', KEYS[1], run_id)
  return {'start', ''}
end
if strategy == 'enqueue' then
  redis.call('RPUSH', KEYS[3], run_id)
  return {'queued', active}
end
redis.call('SET', KEYS[1], run_id)
return {strategy, active}
