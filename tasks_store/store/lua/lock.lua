-- Take or release a task's short write lock: the locked side of
-- BaseTaskStore's write path on Redis, for a set_variables that lost a few
-- compare-and-swaps (swap.lua).  While it is held, other writers' swaps store
-- nothing, so the holder's read-merge-swap always gets through; the lock is a
-- field of the task's hash, so it goes with the task.  It lapses by itself
-- after its lease (server clock), should its holder die.
--
-- KEYS[1] - the task's hash <tag>:o:<n>:<owner>:t:<id>
-- ARGV[1] - the lock token
-- ARGV[2] - the lease in ms, or "" to release the lock (if this token holds it)
-- return - {1, fields...}: taken; the task as it is now (to build from);
--          {0, ms}: another writer holds it for about `ms` more;
--          {-1}: no such task; {1}: released

local key = KEYS[1]
if ARGV[2] == '' then
  local lock = redis.call('HGET', key, 'lock')
  if lock and string.sub(lock, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
    redis.call('HDEL', key, 'lock')
  end
  return {1}
end
local f = read_task(key)
if not f then
  return {-1}
end
local now = server_ms()
local lock = redis.call('HGET', key, 'lock')
if locked_by_other(lock, ARGV[1]) then
  local sep = string.find(lock, ':', 1, true)
  return {0, tonumber(string.sub(lock, sep + 1)) - now}
end
redis.call('HSET', key, 'lock', ARGV[1] .. ':' .. int(now + tonumber(ARGV[2])))
return {1, unpack(f)}
