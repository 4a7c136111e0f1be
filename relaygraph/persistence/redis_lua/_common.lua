-- Shared prelude, prepended to every RedisSaver script by the Python module.
--
-- Every script gets the same fixed set of per-thread keys (all carrying the thread's hash
-- tag, so a script touches one cluster slot). Field names join plain parts with "\0":
--   heads  hash  ns -> head checkpoint id
--   hdr    hash  ns\0id -> header bytes (opaque to Lua)
--   cv     hash  ns\0id -> "channel\0version\0channel\0version..." (plain, for Lua)
--   ix     zset  ns\0id (score 0, lexicographic: per-namespace history)
--   ixt    zset  id\0ns (score 0: thread-wide history, all namespaces)
--   blob   hash  ns\0channel\0version -> blob bytes
--   base   hash  ns\0channel\0version -> base version of an append blob (plain)
--   wv     hash  ns\0id\0task\0idx -> pending write bytes
--   wx     zset  ns\0id\0seq\0task\0idx (insertion order of pending writes)
--   run    hash  ns\0id -> run id
--   rx     zset  run\0ns\0id
--   seq    string counter ordering pending writes
local HEADS, HDR, CV, IX, IXT, BLOB, BASE, WV, WX, RUN, RX, SEQ = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
local SEP = "\0"

-- Split a "\0"-joined string ("" gives an empty list).
local function split(s)
  local out = {}
  if s == nil or s == "" then return out end
  local pos = 1
  while true do
    local i = string.find(s, SEP, pos, true)
    if not i then
      out[#out + 1] = string.sub(s, pos)
      return out
    end
    out[#out + 1] = string.sub(s, pos, i - 1)
    pos = i + 1
  end
end

-- One command over many arguments (field/value pairs, members...), in chunks of at most
-- 1000 so unpack stays far below Lua's stack limit. ``width``: arguments that belong
-- together (2 for pairs), never split across chunks. Returns the sum of the replies (for
-- HSET: how many fields were new).
local function call_many(command, key, args, width)
  local chunk, sum = 1000 - 1000 % width, 0
  for first = 1, #args, chunk do
    sum = sum + redis.call(command, key, unpack(args, first, math.min(first + chunk - 1, #args)))
  end
  return sum
end

-- Refresh the thread's retention on every key (a no-op for keys that do not exist).
local function refresh(ttl)
  if ttl > 0 then
    for i = 1, #KEYS do redis.call("EXPIRE", KEYS[i], ttl) end
  end
end

-- The hash field of a pending write, from its index member (drops the sequence part).
local function write_field(prefix, member)
  local rest = string.sub(member, #prefix + 1)
  local cut = string.find(rest, SEP, 1, true)
  return prefix .. string.sub(rest, cut + 1)
end

-- Pending-write index members of one checkpoint (member = ns\0id), in insertion order.
local function write_members(member)
  return redis.call("ZRANGE", KEYS[WX], "[" .. member .. SEP, "(" .. member .. "\1", "BYLEX")
end
