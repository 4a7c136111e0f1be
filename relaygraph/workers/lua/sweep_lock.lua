-- Take (or keep) the sweep lock of one index bucket, so one sweeper at a time sweeps it.
-- KEYS[1]: the bucket's lock (rgw:{idx:N}:sweeper, the bucket's slot)
-- ARGV: token (the sweeper's), ttl_ms
-- Returns 1 when the caller holds the lock for ttl_ms from now, else 0.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
