-- The helpers every script of RedisTaskStore shares.  tasks_store/store/redis.py
-- puts this file in front of each script, after the tables it generates from
-- the domain layer (never typed here):
--
--   TRANSITIONS[from][to] == true   the moves tasks_store.status allows
--   TERMINAL[status] == true        completed, failed, cancelled
--   FIELDS                          a task hash's fields, in the order every
--                                   script returns them (see redis.py)
--
-- Every key a script touches carries its shard's hash tag "{<p>:<k>}", so a
-- script touches one hash slot (Redis Cluster runs it on one node).
--
-- A task hash (key <tag>:o:<n>:<owner>:t:<id>) holds:
--   st    status                    msg   status message as JSON (absent: none)
--   upd   lastUpdatedAt (ISO text)  ver   version, +1 on every write
--   vars  variables, JSON text      res   result, JSON text (absent: none)
--   exp   expires_at_ms ('' never)  op    the last write's token
--   prev  the status before the last write
--   fix   what never changes: "<created_ms>\0<seq>\0<ttl ms, '' none>\0<pollInterval>
--         \0<request method JSON>\0<createdAt (ISO text)>"
--   inp   the input requests' JSON (absent: none; tasks_store.records)
--   lock  "<token>:<deadline ms>"   (set_variables' short lock; absent: free)

-- The task's fields in FIELDS order, or nil if there is no such task.
local function read_task(key)
  local f = redis.call('HMGET', key, unpack(FIELDS))
  if not f[1] then
    return nil
  end
  return f
end

-- Whether a task expiring at exp ('' for never) has expired at now (epoch ms,
-- the store's clock).  The rule is tasks_store.rules.ensure_live's; a refusal
-- is raised in Python by that rule itself.
local function expired(exp, now)
  return exp ~= '' and tonumber(now) >= tonumber(exp)
end

-- The server's clock, epoch ms (for native expiry and lock leases only).
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A number as the integer text Redis commands take (never "1e+14").
local function int(n)
  return string.format('%.0f', n)
end

-- Whether the lock value `lock` (or false) is held, unexpired, by another
-- writer than `token`.
local function locked_by_other(lock, token)
  if not lock then
    return false
  end
  local sep = string.find(lock, ':', 1, true)
  if string.sub(lock, 1, sep - 1) == token then
    return false
  end
  return tonumber(string.sub(lock, sep + 1)) > server_ms()
end

-- Make `key` live at least `keep` ms more (server clock), or for ever when
-- keep is nil.  `ttl` is the key's PTTL read before this script wrote it: -1
-- (it is kept for ever: it serves a task without TTL) stays; otherwise the
-- key lives the longer of `keep` and its old TTL (set again in case the
-- script emptied the key and made it anew).
local function keep_for(key, ttl, keep)
  if keep == nil then
    redis.call('PERSIST', key)
  elseif ttl ~= -1 then
    redis.call('PEXPIRE', key, int(math.max(keep, ttl)))
  end
end

-- Remove one task and every index entry of it, and wake its waiters.
-- member: "<created_ms:16>:<seq:16>:<id>" (its list member); owner: raw id.
-- The task's keys are built from the member: they share the shard's tag.
-- Returns 1 if the task was still listed (it counts as removed), else 0.
local function remove_task(tag, member, owner, expiry, count)
  local base = tag .. ':o:' .. #owner .. ':' .. owner
  redis.call('ZREM', expiry, member .. ':' .. owner)
  if redis.call('ZREM', base .. ':list', member) == 0 then
    return 0
  end
  local id = string.sub(member, 35)
  redis.call('DEL', base .. ':t:' .. id, tag .. ':id:' .. id)
  redis.call('ZREM', base .. ':live', id)
  if redis.call('DECR', count) <= 0 then
    redis.call('DEL', count)
  end
  redis.call('PUBLISH', tag .. ':ev:' .. id, 'removed')
  return 1
end

-- Remove the tasks of an expiry index entry list ("<member>:<owner>" each).
local function remove_entries(tag, entries, expiry, count)
  local removed = 0
  for _, entry in ipairs(entries) do
    removed = removed + remove_task(tag, string.sub(entry, 1, 70), string.sub(entry, 72),
                                    expiry, count)
  end
  return removed
end
