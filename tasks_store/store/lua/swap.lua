-- Replace a task's record if nobody changed it since it was read (compare and
-- swap on its version), and announce that the task ended, in one atomic step.
--
-- The new record was computed in Python by tasks_store.rules from the record
-- at version ARGV[1]; if the version moved, the caller computes again from the
-- current record, which this script returns so that no extra read is needed.
--
-- KEYS[1] - the task's hash <p>:o:<n>:<owner>:t:<id>
-- ARGV[1] - the version the new record was computed from
-- ARGV[2] - the write token (recognises a call retried after a lost reply)
-- ARGV[3] - the channel to publish on (the write ends the task), or "" for none
-- ARGV[4] - the message (the new status)
-- ARGV[5..] - field, value pairs to set: "task" always; "vars", "result"
--             when they changed
-- return - {1, version}: swapped;
--          {2, version}: this token's write was applied already (a retry);
--          {0, ver, seq, task, info, vars, result}: the version moved; the
--          current record, to compute again;
--          {-1}: the task is gone

local key = KEYS[1]
local cur = redis.call('HMGET', key, 'ver', 'op')
if not cur[1] then
  return {-1}
end
if cur[1] ~= ARGV[1] then
  if cur[2] == ARGV[2] then
    return {2, tonumber(cur[1])}
  end
  local r = redis.call('HMGET', key, 'ver', 'seq', 'task', 'info', 'vars', 'result')
  return {0, r[1], r[2], r[3], r[4], r[5], r[6]}
end

local version = tonumber(cur[1]) + 1
local fields = {'ver', version, 'op', ARGV[2]}
for i = 5, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', key, unpack(fields))
if ARGV[3] ~= '' then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return {1, version}
