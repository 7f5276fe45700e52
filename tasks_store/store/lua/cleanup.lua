-- Remove a batch of expired tasks and every index entry of theirs, in one
-- atomic step, and wake their waiters.  No SCAN/KEYS: the expiry index names
-- each task's keys (cost: O(k log n) for k tasks removed).
--
-- Each expiry member is "<created_ms:16>:<seq:16>:<id>:<owner>" (the list
-- member, then the owner), so a task whose hash Redis already dropped (the
-- retention backstop) still has its index entries removed.  The keys are
-- built here from the members, so this script is for a single Redis server
-- (or a primary with replicas), not Redis Cluster.
--
-- KEYS[1] - the expiry index <p>:expiry
-- KEYS[2] - the task counter <p>:count
-- ARGV[1] - now, epoch ms, by the store's clock: tasks expiring at or before
--           it are removed
-- ARGV[2] - the most tasks to remove in this call
-- ARGV[3] - the key prefix <p>
-- return - how many tasks were removed

local prefix = ARGV[3]
local members = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE',
                           'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(members) do
  local id = string.sub(member, 35, 70)
  local owner = string.sub(member, 72)
  local base = prefix .. ':o:' .. #owner .. ':' .. owner
  redis.call('DEL', base .. ':t:' .. id, prefix .. ':id:' .. id)
  redis.call('ZREM', base .. ':list', string.sub(member, 1, 70))
  redis.call('ZREM', base .. ':live', id)
  redis.call('PUBLISH', prefix .. ':ev:' .. id, 'removed')
end
if #members > 0 then
  redis.call('ZREM', KEYS[1], unpack(members))
  redis.call('DECRBY', KEYS[2], #members)
end
return #members
