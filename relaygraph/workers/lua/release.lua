-- Give a running task back to the queue without finishing it: its broker retry (published
-- by the caller right after) runs it again after the delay.
-- KEYS[1] step hash; ARGV: task_id, epoch, time (ms) the retry is due
-- The task is 'sent' (on the broker) from the retry's due time on, for the sweeper.
local key, tid = KEYS[1], ARGV[1]
if redis.call('HGET', key, 's:' .. tid) ~= 'running' then return 0 end
if tonumber(redis.call('HGET', key, 'e:' .. tid)) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', key, 's:' .. tid, 'sent', 'q:' .. tid, ARGV[3])
return 1
