-- Move a run to a final (or interrupted) status and hand the thread to the next queued run.
-- KEYS[1] thread's active-run key, KEYS[2] run hash, KEYS[3] thread's run queue,
-- KEYS[4] the thread's run index (optional)
-- ARGV: run_id, status, now_ms, error text[, retention seconds (0 or absent: forever)]
-- A run already cancelled keeps that status. The run's record expires after the retention,
-- and so do index entries of runs that finished longer ago (bounded data per thread).
-- Returns the next run id to start, or ''.
local status = redis.call('HGET', KEYS[2], 'status')
if status ~= 'cancelled' then
  redis.call('HSET', KEYS[2], 'status', ARGV[2], 'updated', ARGV[3], 'error', ARGV[4])
end
local ttl = tonumber(ARGV[5] or '0')
if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
if KEYS[4] then
  local now = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[4], now, ARGV[1])
  if ttl > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now - ttl * 1000))
    if redis.call('ZCOUNT', KEYS[4], '+inf', '+inf') == 0 then
      redis.call('EXPIRE', KEYS[4], ttl)
    else
      redis.call('PERSIST', KEYS[4])
    end
  end
end
-- A run that ends while it waits in the queue (cancelled) leaves it: the hand-over below
-- must never make an ended run active (nothing would start it; the thread stays busy).
redis.call('LREM', KEYS[3], 0, ARGV[1])
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return '' end
local next_run = redis.call('LPOP', KEYS[3])
if next_run then
  redis.call('SET', KEYS[1], next_run)
  return next_run
end
redis.call('DEL', KEYS[1])
return ''
