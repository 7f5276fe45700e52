-- Change a task's status, message or result in one atomic step: the status
-- writes of RedisTaskStore (update_status, cancel, complete_with_result,
-- set_result) are each this one script, one round trip, no retries.
--
-- It checks what tasks_store.rules checks, in its order: expiry, then the
-- transition table (generated from tasks_store.status), or for a result
-- alone that the task has not ended.  It returns the fields it judged, so
-- that Python runs the rule itself on them: the record the caller gets, or
-- the rule's own error (Expired, InvalidTransition), come from one place.
--
-- KEYS[1] - the task's hash <tag>:o:<n>:<owner>:t:<id>
-- ARGV[1] - now, epoch ms, by the store's clock (expiry is judged at it)
-- ARGV[2] - now as lastUpdatedAt (ISO text)
-- ARGV[3] - the write token (recognises a call retried after a lost reply)
-- ARGV[4] - the status to move to, or "" to keep it
-- ARGV[5] - the status message: "" to keep it, "-" to clear it, else its JSON
-- ARGV[6] - the result's JSON text, or "" to keep it
-- ARGV[7] - the task's channel: a move to a terminal status publishes on it
-- return - {1, fields...}: applied; the fields are the task before it;
--          {0, fields...}: refused (expired, or not allowed); the task as is;
--          {2, prev, fields...}: this token's write was applied already (a
--          retry); the task as it is now and its status before that write;
--          {-1}: no such task

local key = KEYS[1]
local n = #FIELDS
local f = redis.call('HMGET', key, 'op', 'prev', unpack(FIELDS))
if not f[3] then
  return {-1}
end
local op, prev = table.remove(f, 1), table.remove(f, 1)
if op == ARGV[3] then
  return {2, prev, unpack(f, 1, n)}
end

local st, target = f[1], ARGV[4]
local allowed = not expired(f[7], ARGV[1])
if allowed then
  if target ~= '' then
    allowed = TRANSITIONS[st][target] == true
  else
    allowed = not TERMINAL[st]
  end
end
if not allowed then
  return {0, unpack(f, 1, n)}
end

local fields = {'upd', ARGV[2], 'ver', tonumber(f[4]) + 1, 'op', ARGV[3], 'prev', st}
if target ~= '' then
  fields[#fields + 1] = 'st'
  fields[#fields + 1] = target
end
if ARGV[6] ~= '' then
  fields[#fields + 1] = 'res'
  fields[#fields + 1] = ARGV[6]
end
if ARGV[5] == '-' then
  if f[2] then
    redis.call('HDEL', key, 'msg')
  end
elseif ARGV[5] ~= '' then
  fields[#fields + 1] = 'msg'
  fields[#fields + 1] = ARGV[5]
end
redis.call('HSET', key, unpack(fields))
if target ~= '' and TERMINAL[target] then
  redis.call('PUBLISH', ARGV[7], target)
end
return {1, unpack(f, 1, n)}
