-- Read one page of an owner's tasks, newest first, and the shard's cursor
-- secret, in one atomic step (one snapshot: a task is on the page whole or
-- not at all).
--
-- A listed task whose hash Redis already dropped (its retention passed) is
-- not returned: its index entries are removed here and the page is filled
-- from older members, so a page is short only at the end of the list and
-- never empty while tasks follow.
--
-- KEYS[1] - the owner's list index <tag>:o:<n>:<owner>:list (see create.lua)
-- KEYS[2] - the shard's cursor secret <tag>:secret (hex)
-- KEYS[3] - the shard's expiry index <tag>:expiry
-- KEYS[4] - the shard's task count   <tag>:count
-- ARGV[1] - the exclusive upper bound: "+" for the newest, else
--           "(<created_ms:16>:<seq:16>:" (every task older than the cursor)
-- ARGV[2] - the page size
-- ARGV[3] - a secret to store if the shard has none (it expires with the
--           shard's keys)
-- ARGV[4] - the head of the owner's task keys: <tag>:o:<n>:<owner>:t:
-- ARGV[5] - the shard's tag "{<p>:<k>}"
-- ARGV[6] - the owner id, raw
-- return - {false}: the shard holds no task (and no secret);
--          {secret, more, id, fields, id, fields...}: more is 1 if tasks
--          follow the page; each task's id and its FIELDS (absent ones nil)

local secret = redis.call('GET', KEYS[2])
if not secret then
  local ttl = redis.call('PTTL', KEYS[4])
  if ttl == -2 then
    return {false}
  elseif ttl == -1 then
    redis.call('SET', KEYS[2], ARGV[3], 'NX')
  else
    redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl, 'NX')
  end
  secret = ARGV[3]
end

local out = {secret, 0}
local size = tonumber(ARGV[2])
local bound, found = ARGV[1], 0
while found <= size do
  local members = redis.call('ZRANGE', KEYS[1], bound, '-', 'BYLEX', 'REV',
                             'LIMIT', 0, size + 1 - found)
  if #members == 0 then
    break
  end
  for _, member in ipairs(members) do
    local id = string.sub(member, 35)
    local f = redis.call('HMGET', ARGV[4] .. id, unpack(FIELDS))
    if not f[1] then
      remove_task(ARGV[5], member, ARGV[6], KEYS[3], KEYS[4])
    elseif found == size then
      out[2] = 1
      found = found + 1
      break
    else
      out[2 * found + 3] = id
      out[2 * found + 4] = f
      found = found + 1
    end
  end
  bound = '(' .. members[#members]
end
return out
