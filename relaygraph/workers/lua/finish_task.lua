-- Record a task's end (done / error / interrupted) with its writes and stream events, under
-- its lease epoch, in one script: a worker whose epoch was superseded (a zombie) stores
-- nothing (invariant 8), and the events are in the stream before the step's barrier runs.
-- KEYS: 1-12 the RedisSaver's keys of the thread, 13 step hash, 14 run event stream,
--       15 run event keys
-- ARGV: task_id, epoch, status, now_ms, ttl_ms, then sections "name, n, n arguments":
--       writes (the saver's `writes` arguments) or event (emit_event's arguments), any number.
-- Returns 'last' when this was the step's last open task (the caller runs the barrier),
-- 'ok', 'dup' (already recorded: a duplicate delivery) or 'stale' (fenced out).
local step, tid = KEYS[13], ARGV[1]
local sections, at = {}, 6
while at <= #ARGV do
  local name, n = ARGV[at], tonumber(ARGV[at + 1])
  if (name ~= 'writes' and name ~= 'event') or not n or at + 1 + n > #ARGV then
    return redis.error_reply('finish_task: malformed section ' .. tostring(name) .. ' at ' .. at)
  end
  sections[#sections + 1] = {name, slice(ARGV, at + 2, n)}
  at = at + 2 + n
end
-- One read of everything the script checks and updates on the step hash: the sections
-- below touch only the saver's keys and the event stream, so 'done' and 'total' read here
-- are still current when the task's end is recorded.
local task = redis.call('HMGET', step, 's:' .. tid, 'e:' .. tid, 'done', 'total')
local status = task[1]
if not status then return 'stale' end
if status == 'done' or status == 'error' or status == 'interrupted' then return 'dup' end
if tonumber(task[2]) ~= tonumber(ARGV[2]) then return 'stale' end
local saver_keys = slice(KEYS, 1, 12)
for _, section in ipairs(sections) do
  if section[1] == 'writes' then
    saver_writes(saver_keys, section[2])
  else
    emit_event({KEYS[14], KEYS[15]}, section[2])
  end
end
local done = (tonumber(task[3]) or 0) + 1
if done >= tonumber(task[4]) then
  redis.call('HSET', step, 's:' .. tid, ARGV[3], 'done', done, 'state', 'barrier',
    'bd', tonumber(ARGV[4]) + tonumber(ARGV[5]))
  return 'last'
end
redis.call('HSET', step, 's:' .. tid, ARGV[3], 'done', done)
return 'ok'
