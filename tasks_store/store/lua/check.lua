-- For tests only (RedisTaskStore._check): every key of one shard, whole, in
-- one step, so that Python can check the invariants on one snapshot.  KEYS
-- is O(size of the database): never used by the store itself.
--
-- KEYS[1] - any key of the shard (it routes the script to the shard's node)
-- ARGV[1] - the pattern of the shard's keys, "{<p>:<k>}:*" (glob-escaped); on
--           a single server, "{<p>:*" takes every shard's at once
-- return - one {key, type, expiry, contents} per key: expiry is the epoch ms
--          the key expires at (server clock), -1 for never; contents are a
--          hash's field-value pairs, a zset's member-score pairs, a string's
--          value

-- When the key expires, epoch ms (PEXPIRETIME from Redis 7.0; before, PTTL
-- plus the time, which a preempted server may blur by a few ms).
local function expires_at(key)
  local at = redis.pcall('PEXPIRETIME', key)
  if type(at) == 'number' then
    return at
  end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    return ttl
  end
  local t = redis.call('TIME')
  return ttl + tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local out = {}
for _, key in ipairs(redis.call('KEYS', ARGV[1])) do
  local kind = redis.call('TYPE', key)['ok']
  local value = {}
  if kind == 'hash' then
    value = redis.call('HGETALL', key)
  elseif kind == 'zset' then
    value = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  elseif kind == 'string' then
    value = {redis.call('GET', key)}
  end
  out[#out + 1] = {key, kind, expires_at(key), value}
end
return out
