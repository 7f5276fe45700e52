-- Read one page of an owner's tasks, newest first, and the cursor secret, in
-- one atomic step (one snapshot: a task is on the page whole or not at all).
--
-- KEYS[1] - the owner's list index <p>:o:<n>:<owner>:list (see create.lua)
-- KEYS[2] - the cursor secret      <p>:secret (hex; set once, SET NX)
-- ARGV[1] - the exclusive upper bound: "+" for the newest, else
--           "(<created_ms:16>:<seq:16>:" (every task older than the cursor)
-- ARGV[2] - how many members to read: the page size plus one, to learn
--           whether more follow
-- ARGV[3] - a secret to store if none is set yet
-- ARGV[4] - the head of the owner's task keys: <p>:o:<n>:<owner>:t:
-- return - {secret, members, fields...}: the members read, newest first, and
--          for each its task's {ver, seq, task, info, vars, result} (all nil
--          for a task Redis already dropped)

redis.call('SET', KEYS[2], ARGV[3], 'NX')
local out = {redis.call('GET', KEYS[2])}
local members = redis.call('ZRANGE', KEYS[1], ARGV[1], '-', 'BYLEX', 'REV',
                           'LIMIT', 0, tonumber(ARGV[2]))
out[2] = members
for i, member in ipairs(members) do
  out[i + 2] = redis.call('HMGET', ARGV[4] .. string.sub(member, 35),
                          'ver', 'seq', 'task', 'info', 'vars', 'result')
end
return out
