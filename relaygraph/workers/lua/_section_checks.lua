-- Shared by the scripts that commit a step and register the next one (hop.lua, start.lua;
-- prepended by coordination.compose): the shape checks of their commit, broker and publish
-- sections, run before anything is written (a script error does not roll back what ran
-- before it). `queue_keys` is the index of the key before the first broker queue list.
-- Returns an error reply naming the script and the section, or nil when it is well formed.
local function check_section(script, name, n, at, queue_keys)
  if name == 'commit' and (n < 8 or (n - 8) % 4 ~= 0) then
    return redis.error_reply(script .. ': malformed commit section (' .. n .. ' arguments)')
  end
  if name == 'broker' and n % 2 ~= 0 then
    return redis.error_reply(script .. ': malformed broker section')
  end
  if name == 'publish' then
    if n % 3 ~= 0 then return redis.error_reply(script .. ': malformed publish section') end
    for i = at + 3, at + 1 + n, 3 do
      local index = tonumber(ARGV[i])
      if not index or index < 1 or not KEYS[queue_keys + index] then
        return redis.error_reply(script .. ': publish names no queue key')
      end
    end
  end
  return nil
end
