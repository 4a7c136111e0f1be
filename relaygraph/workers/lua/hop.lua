-- One hop of a single-task superstep, atomically: fence the task, commit the next
-- checkpoint by compare-and-set, store the task's writes, mark the task and the step done,
-- register the next step's tasks and append the step's events.
-- KEYS: 1-12 the RedisSaver's keys of the thread, 13 step hash, 14 run hash, 15 next step
--       hash, 16 run event stream, 17 run event keys, 18.. broker queue lists (publish)
-- ARGV: task_id, epoch, now_ms, next step member ('' when nothing is registered), seconds
--       the committed step is kept (0: forever), then sections "name, n, n arguments" in
--       this order: commit (exactly one), writes (any),
--       register (at most one), broker (at most one: task id, broker id pairs), publish
--       (at most one: task id, queue key index from 1, Celery message triples: the next
--       tasks go on the broker with the commit, already 'sent'), event (any).
-- Returns {'ok'}; {'refused', reason} when a precondition fails (nothing is stored: the
-- caller falls back to the step-by-step protocol); or the saver commit's refusal
-- ({'conflict', head}, {'missing_base', ...}, {'missing_blob', ...}), also storing nothing.
local KNOWN = {
  commit = true, writes = true, register = true, broker = true, publish = true, event = true
}
local step, run, tid, epoch = KEYS[13], KEYS[14], ARGV[1], tonumber(ARGV[2])
-- 'done' is read here so that the commit's step update is one HSET (no HINCRBY after it).
local now = redis.call('HMGET', step, 'state', 'total', 's:' .. tid, 'e:' .. tid, 'done')
if now[1] ~= 'running' then return {'refused', 'step'} end
if now[2] ~= '1' then return {'refused', 'fan-out'} end
if now[3] ~= 'running' then return {'refused', 'task'} end
if tonumber(now[4]) ~= epoch then return {'refused', 'stale'} end
local run_status = redis.call('HGET', run, 'status')
if run_status ~= 'pending' and run_status ~= 'running' then return {'refused', 'run'} end

-- A section's arguments as a table: one table constructor over unpack (a C-speed copy,
-- sized once) instead of a loop growing the table; a loop only past unpack's stack limit.
local function arguments(from, n)
  if n <= 1000 then return {unpack(ARGV, from, from + n - 1)} end
  local out = {}
  for i = 0, n - 1 do out[i + 1] = ARGV[from + i] end
  return out
end

-- Read the sections and check their shape before anything is written: a script error
-- does not roll back what ran before it.
local sections, at = {}, 6
while at <= #ARGV do
  local name, n = ARGV[at], tonumber(ARGV[at + 1])
  if not KNOWN[name] or not n or at + 1 + n > #ARGV then
    return redis.error_reply('hop: malformed section ' .. tostring(name) .. ' at ' .. at)
  end
  if (name == 'commit') ~= (#sections == 0) then
    return redis.error_reply('hop: exactly one commit section, and first')
  end
  local malformed = check_section('hop', name, n, at, 17)
  if malformed then return malformed end
  sections[#sections + 1] = {name, arguments(at + 2, n)}
  at = at + 2 + n
end
if #sections == 0 then return redis.error_reply('hop: no commit section') end
-- A saver with a TTL refreshes all twelve of the thread's keys in its commit and again in
-- its writes: when a writes section with the same TTL comes after the commit (every
-- section does), its refresh alone sets the same expiry on every key, including those the
-- commit created, so the commit's twelve EXPIREs are skipped (the TTL is the commit's
-- first argument and used for nothing else).
local commit_args = sections[1][2]
for i = 2, #sections do
  if sections[i][1] == 'writes' and tonumber(sections[i][2][1]) == tonumber(commit_args[1]) then
    commit_args[1] = '0'
    break
  end
end

-- The next step's fields set by the broker and publish sections, and the run hash's
-- fields, are gathered and set in one HSET each after the loop (nothing in between reads
-- them back).
local saver_keys = {unpack(KEYS, 1, 12)}
local next_fields, registered = {}, nil
local run_fields = {'status', 'running', 'updated', ARGV[3]}
if ARGV[4] ~= '' then
  run_fields[5], run_fields[6] = 'step', ARGV[4]
end
for _, section in ipairs(sections) do
  local name, args = section[1], section[2]
  if name == 'commit' then
    local reply = saver_commit(saver_keys, args)
    if reply[1] ~= 'ok' then return reply end  -- the saver stored nothing
    redis.call('HSET', step, 's:' .. tid, 'done', 'state', 'committed',
      'done', (tonumber(now[5]) or 0) + 1)
    if tonumber(ARGV[5]) > 0 then redis.call('EXPIRE', step, ARGV[5]) end
  elseif name == 'writes' then
    saver_writes(saver_keys, args)
  elseif name == 'register' then
    -- without the run's key: the run hash's step entry joins its HSET after the loop
    if register_step({KEYS[15]}, args) == 1 then
      -- registered just now: every task of the section is 'queued' (no need to read it)
      registered = {}
      for i = 4, #args, 2 do registered[args[i]] = true end
      run_fields[#run_fields + 1] = 'k:' .. KEYS[15]
      run_fields[#run_fields + 1] = args[3]
    end
  elseif name == 'broker' then
    for i = 1, #args, 2 do
      next_fields[#next_fields + 1] = 'c:' .. args[i]
      next_fields[#next_fields + 1] = args[i + 1]
    end
  elseif name == 'publish' then
    for i = 1, #args, 3 do
      local field = 's:' .. args[i]
      redis.call('LPUSH', KEYS[17 + tonumber(args[i + 1])], args[i + 2])
      if (registered and registered[args[i]]) or
          (not registered and redis.call('HGET', KEYS[15], field) == 'queued') then
        next_fields[#next_fields + 1] = field
        next_fields[#next_fields + 1] = 'sent'
      end
    end
  else
    emit_event({KEYS[16], KEYS[17]}, args)
  end
end
for first = 1, #next_fields, 1000 do
  redis.call('HSET', KEYS[15], unpack(next_fields, first, math.min(first + 999, #next_fields)))
end
redis.call('HSET', run, unpack(run_fields))
return {'ok'}
