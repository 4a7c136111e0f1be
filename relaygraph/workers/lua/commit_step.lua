-- A step's barrier commit, atomically: only while the run is still active, commit the next
-- checkpoint by compare-and-set and append the step's events.
-- KEYS: 1-12 the RedisSaver's keys of the thread, 13 step hash, 14 run hash, 15 run event
--       stream, 16 run event keys
-- ARGV: now_ms, then sections "name, n, n arguments": commit (exactly one, first), then
--       event (any).
-- Returns {'ok'}; {'refused', 'run'} when the run is no longer pending or running (a cancel
-- or an interrupting submission came first: nothing is stored); or the saver commit's
-- refusal ({'conflict', head}, {'exists'}, {'missing_base', ...}, {'missing_blob', ...}).
local sections, at = {}, 2
while at <= #ARGV do
  local name, n = ARGV[at], tonumber(ARGV[at + 1])
  if (name ~= 'commit' and name ~= 'event') or not n or at + 1 + n > #ARGV then
    return redis.error_reply('commit_step: malformed section ' .. tostring(name) .. ' at ' .. at)
  end
  if (name == 'commit') ~= (#sections == 0) then
    return redis.error_reply('commit_step: exactly one commit section, and first')
  end
  sections[#sections + 1] = {name, slice(ARGV, at + 2, n)}
  at = at + 2 + n
end
if #sections == 0 then return redis.error_reply('commit_step: no commit section') end
local run_status = redis.call('HGET', KEYS[14], 'status')
if run_status ~= 'pending' and run_status ~= 'running' then return {'refused', 'run'} end
for _, section in ipairs(sections) do
  if section[1] == 'commit' then
    local reply = saver_commit(slice(KEYS, 1, 12), section[2])
    if reply[1] ~= 'ok' then return reply end  -- the saver stored nothing
  else
    emit_event({KEYS[15], KEYS[16]}, section[2])
  end
end
redis.call('HSET', KEYS[14], 'updated', ARGV[1])
return {'ok'}
