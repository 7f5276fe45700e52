-- Replace a task's record if nobody changed it since it was read (compare and
-- swap on its version), in one atomic step: the optimistic side of
-- BaseTaskStore's write path, which set_variables takes (its merge and size
-- limit run in Python, tasks_store.rules).  While another writer holds the
-- task's short lock (lock.lua) it stores nothing, so the holder cannot be
-- starved; the holder itself swaps with its lock token and releases it.
--
-- KEYS[1] - the task's hash <tag>:o:<n>:<owner>:t:<id>
-- ARGV[1] - the version the new record was computed from
-- ARGV[2] - the write token (recognises a call retried after a lost reply)
-- ARGV[3] - the lock token this writer holds, or ""
-- ARGV[4] - status            ARGV[5] - status message JSON, "" for none, or
--           "=" to keep the one stored (the record read has the same)
-- ARGV[6] - lastUpdatedAt (ISO text)
-- ARGV[7] - variables JSON
-- ARGV[8] - result JSON, or "" for none
-- ARGV[9] - the task's channel to publish ARGV[4] on (the write ends the
--           task), or ""
-- ARGV[10] - the input requests' JSON ("{}": none, "=": keep the one stored)
-- return - {1}: swapped; {2}: this token's write was applied already (a retry);
--          {0, fields...}: the version moved: the current record, to compute
--          again; {3, fields...}: another writer holds the lock (the same);
--          {-1}: no such task

local key = KEYS[1]
local cur = redis.call('HMGET', key, 'ver', 'op', 'lock', 'st')
if not cur[1] then
  return {-1}
end
if cur[2] == ARGV[2] then
  return {2}
end
if locked_by_other(cur[3], ARGV[3]) then
  return {3, unpack(read_task(key))}
end
if cur[1] ~= ARGV[1] then
  return {0, unpack(read_task(key))}
end

local fields = {'ver', tonumber(cur[1]) + 1, 'op', ARGV[2], 'prev', cur[4],
                'st', ARGV[4], 'upd', ARGV[6], 'vars', ARGV[7]}
if ARGV[8] ~= '' then
  fields[#fields + 1] = 'res'
  fields[#fields + 1] = ARGV[8]
end
if ARGV[5] == '' then
  redis.call('HDEL', key, 'msg')
elseif ARGV[5] ~= '=' then
  fields[#fields + 1] = 'msg'
  fields[#fields + 1] = ARGV[5]
end
if ARGV[10] == '{}' then
  redis.call('HDEL', key, 'inp')
elseif ARGV[10] ~= '=' then
  fields[#fields + 1] = 'inp'
  fields[#fields + 1] = ARGV[10]
end
redis.call('HSET', key, unpack(fields))
if cur[3] and ARGV[3] ~= '' then
  redis.call('HDEL', key, 'lock')  -- not another's (checked above): this writer's, or lapsed
end
if ARGV[9] ~= '' then
  redis.call('PUBLISH', ARGV[9], ARGV[4])
end
return {1}
