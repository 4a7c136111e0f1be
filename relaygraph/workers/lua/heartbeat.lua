-- Renew a running task's lease; 0 when the caller no longer holds it (fenced out).
-- KEYS[1] step hash; ARGV: task_id, epoch, now_ms, ttl_ms
local key, tid = KEYS[1], ARGV[1]
if redis.call('HGET', key, 's:' .. tid) ~= 'running' then return 0 end
if tonumber(redis.call('HGET', key, 'e:' .. tid)) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', key, 'd:' .. tid, tonumber(ARGV[3]) + tonumber(ARGV[4]))
return 1
