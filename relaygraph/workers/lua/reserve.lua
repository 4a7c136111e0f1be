-- Mark a task whose message a worker has received but not started ("reserved by W"), so
-- the sweeper can tell a message held by a dead worker from one waiting in a backlog.
-- KEYS[1] step hash; ARGV: task_id, epoch (the message's), worker (its reservation id)
-- Only a task still waiting for a worker under the message's epoch is marked: a finished,
-- running or re-enqueued task is left alone, and no key is created.
local key, tid = KEYS[1], ARGV[1]
local task = redis.call('HMGET', key, 's:' .. tid, 'e:' .. tid)
if task[1] ~= 'sent' and task[1] ~= 'queued' then return 0 end
if task[2] ~= ARGV[2] then return 0 end
redis.call('HSET', key, 'r:' .. tid, ARGV[2] .. ' ' .. ARGV[3])
return 1
