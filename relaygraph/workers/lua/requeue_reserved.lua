-- Recovery: a new epoch for a task whose message a dead worker had reserved (received but
-- not started; see reserve.lua). The caller found the worker's liveness expired.
-- KEYS[1] step hash; ARGV: task_id, now_ms, the reservation mark ("<epoch> <worker>")
-- Returns the new epoch, or -1 when the task has moved on (started, finished, re-enqueued,
-- or reserved again by another worker: then the old message is fenced out anyway) or is a
-- retry not due yet.
local key, tid = KEYS[1], ARGV[1]
if redis.call('HGET', key, 'state') ~= 'running' then return -1 end
local task = redis.call('HMGET', key, 's:' .. tid, 'e:' .. tid, 'r:' .. tid)
if task[1] ~= 'sent' and task[1] ~= 'queued' then return -1 end
if task[3] ~= ARGV[3] then return -1 end
if task[2] .. ' ' ~= string.sub(ARGV[3], 1, #task[2] + 1) then return -1 end
-- a retry held for its countdown (release.lua: 'sent' from its due time) waits until due
if tonumber(redis.call('HGET', key, 'q:' .. tid) or '0') > tonumber(ARGV[2]) then return -1 end
local epoch = redis.call('HINCRBY', key, 'e:' .. tid, 1)
redis.call('HSET', key, 's:' .. tid, 'queued', 'q:' .. tid, ARGV[2])
redis.call('HDEL', key, 'r:' .. tid)
return epoch
