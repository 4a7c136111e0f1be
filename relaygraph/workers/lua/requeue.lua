-- Recovery: give a task whose lease expired (or that was never picked up) a new epoch.
-- KEYS[1] step hash; ARGV: task_id, now_ms, queued_grace_ms, lease_ttl_ms
-- A task is stuck when it is 'running' past its lease deadline, 'queued' (registered, its
-- publish never confirmed: the publisher died) for a lease TTL, or 'sent' (on the broker)
-- for the queued grace. Returns the new epoch, or -1 when the task needs nothing.
local key, tid = KEYS[1], ARGV[1]
local now = tonumber(ARGV[2])
if redis.call('HGET', key, 'state') ~= 'running' then return -1 end
local status = redis.call('HGET', key, 's:' .. tid)
local stuck = false
if status == 'running' then
  stuck = tonumber(redis.call('HGET', key, 'd:' .. tid) or '0') < now
elseif status == 'queued' then
  stuck = tonumber(redis.call('HGET', key, 'q:' .. tid) or '0') + tonumber(ARGV[4]) < now
elseif status == 'sent' then
  stuck = tonumber(redis.call('HGET', key, 'q:' .. tid) or '0') + tonumber(ARGV[3]) < now
end
if not stuck then return -1 end
local epoch = redis.call('HINCRBY', key, 'e:' .. tid, 1)
redis.call('HSET', key, 's:' .. tid, 'queued', 'q:' .. tid, now)
return epoch
