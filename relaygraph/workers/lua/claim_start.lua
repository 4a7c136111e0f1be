-- Claim the start of a pending run (apply its input, schedule its first step).
-- KEYS[1] run hash; ARGV: now_ms, ttl_ms, worker
-- Returns 1 when the caller may start it: the run is pending and nobody holds a live claim
-- (a claim is renewed while its holder works; a dead holder's claim lapses after ttl).
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
local until_ms = tonumber(redis.call('HGET', KEYS[1], 'start_lease') or '0')
if until_ms > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'start_lease', tonumber(ARGV[1]) + tonumber(ARGV[2]),
  'start_worker', ARGV[3])
return 1
