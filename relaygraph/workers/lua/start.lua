-- A run's start, atomically: while the run is pending and its start claim is the caller's,
-- commit the input checkpoint by compare-and-set, append its events, register the first
-- step, put its tasks on the broker and mark the run running.
-- KEYS: 1-12 the RedisSaver's keys of the thread, 13 run hash, 14 first step hash,
--       15 run event stream, 16 run event keys, 17.. broker queue lists (publish)
-- ARGV: now_ms, the claim holder (start_worker), start_step, the first step's member in
--       the lease index (the run's 'step' field), then sections
--       "name, n, n arguments" in this order: commit (exactly one), event (any), register
--       (exactly one), broker (at most one: task id, broker id pairs), publish (at most one:
--       task id, queue key index from 1, Celery message triples).
-- Returns {'ok'}; {'refused', reason} when the run is no longer pending or the claim is not
-- the caller's; or the saver commit's refusal ({'conflict', head}, {'missing_base', ...},
-- {'missing_blob', ...}). Whenever it does not return {'ok'}, nothing is stored.
local ORDER = {commit = 1, event = 2, register = 3, broker = 4, publish = 5}
local run, step = KEYS[13], KEYS[14]

-- Read the sections and check their shape before anything is written: a script error
-- does not roll back what ran before it.
local sections, at, last = {}, 5, 0
while at <= #ARGV do
  local name, n = ARGV[at], tonumber(ARGV[at + 1])
  local rank = ORDER[name]
  if not rank or not n or at + 1 + n > #ARGV then
    return redis.error_reply('start: malformed section ' .. tostring(name) .. ' at ' .. at)
  end
  if rank < last or (rank == last and rank ~= 2) then
    return redis.error_reply('start: section ' .. name .. ' out of order or repeated')
  end
  if name == 'register' and (n < 5 or (n - 3) % 2 ~= 0) then
    return redis.error_reply('start: malformed register section')
  end
  local malformed = check_section('start', name, n, at, 16)
  if malformed then return malformed end
  last = rank
  sections[#sections + 1] = {name, slice(ARGV, at + 2, n)}
  at = at + 2 + n
end
if #sections == 0 or sections[1][1] ~= 'commit' then
  return redis.error_reply('start: a commit section is required, first')
end
local has_register = false
for _, section in ipairs(sections) do
  if section[1] == 'register' then has_register = true end
end
if not has_register then return redis.error_reply('start: no register section') end

local now = redis.call('HMGET', run, 'status', 'start_worker')
if now[1] ~= 'pending' then return {'refused', 'run'} end
if now[2] ~= ARGV[2] then return {'refused', 'claim'} end

local step_fields = {}
for _, section in ipairs(sections) do
  local name, args = section[1], section[2]
  if name == 'commit' then
    local reply = saver_commit(slice(KEYS, 1, 12), args)
    if reply[1] ~= 'ok' then return reply end  -- the saver stored nothing
  elseif name == 'event' then
    emit_event({KEYS[15], KEYS[16]}, args)
  elseif name == 'register' then
    -- a fresh step (its id is the checkpoint just committed): every task is 'queued'
    register_step({step, run}, args)
  elseif name == 'broker' then
    for i = 1, #args, 2 do
      step_fields[#step_fields + 1] = 'c:' .. args[i]
      step_fields[#step_fields + 1] = args[i + 1]
    end
  else  -- publish: the tasks go on the broker with the commit, already 'sent'
    for i = 1, #args, 3 do
      redis.call('LPUSH', KEYS[16 + tonumber(args[i + 1])], args[i + 2])
      step_fields[#step_fields + 1] = 's:' .. args[i]
      step_fields[#step_fields + 1] = 'sent'
    end
  end
end
for first = 1, #step_fields, 1000 do
  redis.call('HSET', step, unpack(step_fields, first, math.min(first + 999, #step_fields)))
end
redis.call('HSET', run, 'status', 'running', 'updated', ARGV[1], 'start_step', ARGV[3],
  'step', ARGV[4])
return {'ok'}
