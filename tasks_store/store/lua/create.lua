-- Create a task, holding the owner's quota, in one atomic step.
--
-- Every check runs before the first write, and the steps that could fail on
-- a corrupted keyspace (INCR) run before anything else is written: a refused
-- or failed call leaves no task behind.  A created task's keys all expire by
-- themselves (server clock) once its retention has passed, unless it has no
-- TTL; the shard's and the owner's keys are kept as long as their longest-lived
-- task, so every key it made is gone by expires_at + retention even if
-- cleanup_expired never runs.  Before writing, a bounded sweep removes a few
-- tasks of the shard whose retention has passed (their hashes are gone
-- already), so the shard's index stays bounded too.
--
-- KEYS[1] - the task's hash         <tag>:o:<n>:<owner>:t:<id>
-- KEYS[2] - the owner's list index  <tag>:o:<n>:<owner>:list  zset, score 0,
--           member "<created_ms:16>:<seq:16>:<id>" (lexical order = age)
-- KEYS[3] - the owner's live index  <tag>:o:<n>:<owner>:live  zset, id -> expires_at_ms
--           (+inf for no TTL)
-- KEYS[4] - the shard's expiry index <tag>:expiry  zset, "<list member>:<owner>"
--           -> expires_at_ms
-- KEYS[5] - the id -> owner index    <tag>:id:<id>
-- KEYS[6] - the shard's sequence     <tag>:seq
-- KEYS[7] - the shard's task count   <tag>:count
-- KEYS[8] - the shard's cursor secret <tag>:secret (its expiry is kept in step)
-- ARGV[1] - now, epoch ms, by the store's clock: a task expiring at or before
--           it is no longer live and does not count against the quota
-- ARGV[2] - the quota: how many live tasks the owner may hold
-- ARGV[3] - the task id (36 characters)
-- ARGV[4] - the head of the list member: "<created_ms:16>:"
-- ARGV[5] - expires_at_ms, or "" for no TTL
-- ARGV[6] - ms from now (server clock) the task's keys live: TTL + retention,
--           or "" for ever
-- ARGV[7] - the owner id, raw
-- ARGV[8] - the write token (recognises a call retried after a lost reply)
-- ARGV[9] - createdAt = lastUpdatedAt (ISO text)
-- ARGV[10] - the tail of the fixed field: "<ttl>\0<poll>\0<method JSON>\0<createdAt>"
-- ARGV[11] - the owner id as JSON (the id index's value)
-- ARGV[12] - the shard's tag "{<p>:<k>}"
-- ARGV[13] - the sweep's bound: tasks expiring at or before it are past
--            their retention (now - retention)
-- ARGV[14] - the most tasks the sweep removes
-- ARGV[15] - a new task's status (tasks_store.rules.new_record's)
-- return - {1, seq}: created (or created earlier by this same token);
--          {0, live}: the owner holds `live` live tasks, at or above the quota;
--          {-1}: the id is taken

local task, list, live, expiry, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local seq_key, count = KEYS[6], KEYS[7]

if redis.call('EXISTS', task, index) > 0 then
  local mine = redis.call('HMGET', task, 'op', 'fix')
  if mine[1] == ARGV[8] then
    return {1, tonumber(string.match(mine[2], '^%d+%z(%d+)'))}
  end
  return {-1}
end

local held = redis.call('ZCOUNT', live, '(' .. ARGV[1], '+inf')
if held >= tonumber(ARGV[2]) then
  return {0, held}
end

local keys = {list, live, expiry, seq_key, count, KEYS[8]}
local ttls = {}
for i, key in ipairs(keys) do
  ttls[i] = redis.call('PTTL', key)
end
local seq = redis.call('INCR', seq_key)
redis.call('INCR', count)
local due = redis.call('ZRANGE', expiry, '-inf', ARGV[13], 'BYSCORE', 'LIMIT', 0,
                       tonumber(ARGV[14]))
remove_entries(ARGV[12], due, expiry, count)

local member = ARGV[4] .. string.format('%016d', seq) .. ':' .. ARGV[3]
redis.call('HSET', task, 'st', ARGV[15], 'upd', ARGV[9], 'ver', 1, 'op', ARGV[8],
           'vars', '{}', 'exp', ARGV[5], 'prev', ARGV[15],
           'fix', ARGV[1] .. '\0' .. seq .. '\0' .. ARGV[10])
redis.call('ZADD', list, 0, member)
if ARGV[5] == '' then
  redis.call('ZADD', live, '+inf', ARGV[3])
else
  redis.call('ZADD', live, ARGV[5], ARGV[3])
  redis.call('ZADD', expiry, ARGV[5], member .. ':' .. ARGV[7])
end
local keep = nil
if ARGV[6] ~= '' then
  keep = tonumber(ARGV[6])
  redis.call('SET', index, ARGV[11], 'PX', ARGV[6])
  redis.call('PEXPIRE', task, ARGV[6])
else
  redis.call('SET', index, ARGV[11])
end
for i, key in ipairs(keys) do
  keep_for(key, ttls[i], keep)
end
return {1, seq}
