-- Create a task, holding the owner's quota, in one atomic step.
--
-- Every check runs before the first write, and the two steps that could fail
-- on a corrupted keyspace (INCR) run before the task is written: a failed
-- call leaves no task behind.
--
-- KEYS[1] - the task's hash         <p>:o:<n>:<owner>:t:<id>
-- KEYS[2] - the owner's list index  <p>:o:<n>:<owner>:list  zset, score 0,
--           member "<created_ms:16>:<seq:16>:<id>" (lexical order = age)
-- KEYS[3] - the owner's live index  <p>:o:<n>:<owner>:live  zset, id -> expires_at_ms
--           (+inf for no TTL)
-- KEYS[4] - the expiry index        <p>:expiry  zset, "<list member>:<owner>" -> expires_at_ms
-- KEYS[5] - the id -> owner index   <p>:id:<id>
-- KEYS[6] - the sequence counter    <p>:seq
-- KEYS[7] - the task counter        <p>:count
-- ARGV[1] - now, epoch ms, by the store's clock: a task expiring at or before
--           it is no longer live and does not count against the quota
-- ARGV[2] - the quota: how many live tasks the owner may hold
-- ARGV[3] - the task id (36 characters)
-- ARGV[4] - the head of the list member: "<created_ms:16>:"
-- ARGV[5] - expires_at_ms, or "" for no TTL
-- ARGV[6] - retention backstop: ms from now (server time) after which Redis
--           drops the task's keys itself, or "" for never
-- ARGV[7] - the owner id, raw (for the expiry member)
-- ARGV[8] - the write token (recognises a call retried after a lost reply)
-- ARGV[9] - the task as wire JSON
-- ARGV[10] - the fixed fields as JSON (owner, method, created, expires)
-- ARGV[11] - the owner id as JSON (the id index's value)
-- return - {1, seq}: created (or created earlier by this same token);
--          {0, live}: the owner holds `live` live tasks, at or above the quota;
--          {-1}: the id is taken

local task, list, live, expiry, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

if redis.call('EXISTS', task) == 1 then
  if redis.call('HGET', task, 'op') == ARGV[8] then
    return {1, tonumber(redis.call('HGET', task, 'seq'))}
  end
  return {-1}
end
if redis.call('EXISTS', index) == 1 then
  return {-1}
end

local held = redis.call('ZCOUNT', live, '(' .. ARGV[1], '+inf')
if held >= tonumber(ARGV[2]) then
  return {0, held}
end

local seq = redis.call('INCR', KEYS[6])
redis.call('INCR', KEYS[7])
local member = ARGV[4] .. string.format('%016d', seq) .. ':' .. ARGV[3]

redis.call('HSET', task, 'ver', 1, 'op', ARGV[8], 'seq', seq,
           'task', ARGV[9], 'info', ARGV[10], 'vars', '{}')
redis.call('ZADD', list, 0, member)
if ARGV[5] == '' then
  redis.call('ZADD', live, '+inf', ARGV[3])
else
  redis.call('ZADD', live, ARGV[5], ARGV[3])
  redis.call('ZADD', expiry, ARGV[5], member .. ':' .. ARGV[7])
end
redis.call('SET', index, ARGV[11])
if ARGV[6] ~= '' then
  local t = redis.call('TIME')
  local at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[6])
  redis.call('PEXPIREAT', task, at)
  redis.call('PEXPIREAT', index, at)
end
return {1, seq}
