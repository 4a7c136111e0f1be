-- Append a run event to its stream once per event key (a retried node never repeats one).
-- KEYS[1] stream, KEYS[2] set of event keys already written
-- ARGV: event key, maxlen, ttl_s (0: leave the keys' expiry alone; a batch of events sets
-- it on its last one), then field/value pairs. Returns the entry id, or false for a repeat.
local id = false
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 4))
end
if tonumber(ARGV[3]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return id
