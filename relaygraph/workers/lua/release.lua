-- Give a running task back to the queue without finishing it (a broker retry follows).
-- KEYS[1] step hash; ARGV: task_id, epoch, now_ms
local key, tid = KEYS[1], ARGV[1]
if redis.call('HGET', key, 's:' .. tid) ~= 'running' then return 0 end
if tonumber(redis.call('HGET', key, 'e:' .. tid)) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', key, 's:' .. tid, 'queued', 'q:' .. tid, ARGV[3])
return 1
