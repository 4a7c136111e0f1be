-- Renew a running task's lease; 0 when the caller no longer holds it (fenced out).
-- KEYS[1] step hash; ARGV: task_id, epoch, now_ms, ttl_ms[, worker]
-- With a worker name, the lease must also be that worker's (acquire.lua records it): a
-- process that runs a node before its acquire's answer arrives never renews a lease
-- another copy of the task holds under the same epoch.
local key, tid = KEYS[1], ARGV[1]
local task = redis.call('HMGET', key, 's:' .. tid, 'e:' .. tid, 'w:' .. tid)
if task[1] ~= 'running' then return 0 end
if tonumber(task[2]) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[5] and ARGV[5] ~= '' and task[3] ~= ARGV[5] then return 0 end
redis.call('HSET', key, 'd:' .. tid, tonumber(ARGV[3]) + tonumber(ARGV[4]))
return 1
