-- Record a run's progress and mark it running, unless it ended meanwhile.
-- KEYS[1] run hash
-- ARGV: now_ms, then field, value pairs (status 'running' among them)
-- A cancel (or an interrupting submission) may land between a worker's status check and
-- this write: the run then keeps its final status, and the caller schedules nothing more.
-- Never creates the hash (a deleted run stays deleted). Returns 1 when the run is active.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
local active = status == 'pending' or status == 'running'
local fields = {'updated', ARGV[1]}
for i = 2, #ARGV, 2 do
  if ARGV[i] ~= 'status' or active then
    fields[#fields + 1] = ARGV[i]
    fields[#fields + 1] = ARGV[i + 1]
  end
end
redis.call('HSET', KEYS[1], unpack(fields))
if active then return 1 end
return 0
