-- Recovery: take over the barrier of a step whose last task's worker died before committing.
-- KEYS[1] step hash; ARGV: now_ms, ttl_ms. Returns 1 when the caller now holds it.
local key = KEYS[1]
if redis.call('HGET', key, 'state') ~= 'barrier' then return 0 end
local now = tonumber(ARGV[1])
if tonumber(redis.call('HGET', key, 'bd') or '0') > now then return 0 end
redis.call('HSET', key, 'bd', now + tonumber(ARGV[2]))
return 1
