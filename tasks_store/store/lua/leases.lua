-- The lease table of one shard: acquire, renew, release and claim leases on
-- running tasks, each call one atomic step on the server's clock.
--
-- Both keys carry the shard's hash tag, <p>:{leases:<k>}:..., so every call
-- touches one slot (Redis Cluster included).
--
-- KEYS[1] - the held leases, a hash  <p>:{leases:<k>}:held  task id -> "<holder>|<owner JSON>"
-- KEYS[2] - the deadlines, a zset    <p>:{leases:<k>}:due   task id -> deadline (server ms)
-- ARGV[1] - the operation:
--
--   "acquire", holder, ms, id, owner JSON
--       hold the lease on task `id` for `ms`; return 1
--   "renew", holder, ms, id...
--       move each lease `holder` still holds to now + ms; return the ids it
--       no longer holds (claimed by a recovery, or gone)
--   "release", holder, id
--       drop the lease if `holder` holds it; return 1 if it did, else 0
--   "claim", claimer, ms, limit
--       take over at most `limit` leases whose deadline has passed: each is
--       held by `claimer` for `ms` (so a recovery that dies is retried by the
--       next one); return {id, "<old holder>|<owner JSON>", ...}

local held, due = KEYS[1], KEYS[2]
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function holds(value, holder)
  return value and string.sub(value, 1, #holder + 1) == holder .. '|'
end

if op == 'acquire' then
  redis.call('HSET', held, ARGV[4], ARGV[2] .. '|' .. ARGV[5])
  redis.call('ZADD', due, now + tonumber(ARGV[3]), ARGV[4])
  return 1
end

if op == 'renew' then
  local holder, deadline = ARGV[2], now + tonumber(ARGV[3])
  local lost = {}
  for i = 4, #ARGV do
    local id = ARGV[i]
    if holds(redis.call('HGET', held, id), holder) then
      redis.call('ZADD', due, 'XX', deadline, id)
    else
      lost[#lost + 1] = id
    end
  end
  return lost
end

if op == 'release' then
  if holds(redis.call('HGET', held, ARGV[3]), ARGV[2]) then
    redis.call('HDEL', held, ARGV[3])
    redis.call('ZREM', due, ARGV[3])
    return 1
  end
  return 0
end

if op == 'claim' then
  local claimer, deadline = ARGV[2], now + tonumber(ARGV[3])
  local ids = redis.call('ZRANGE', due, '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[4]))
  local out = {}
  for _, id in ipairs(ids) do
    local value = redis.call('HGET', held, id)
    if value then
      local bar = string.find(value, '|', 1, true)
      redis.call('HSET', held, id, claimer .. string.sub(value, bar))
      redis.call('ZADD', due, deadline, id)
      out[#out + 1] = id
      out[#out + 1] = value
    else
      redis.call('ZREM', due, id)
    end
  end
  return out
end

return redis.error_reply('leases.lua: unknown operation ' .. tostring(op))
