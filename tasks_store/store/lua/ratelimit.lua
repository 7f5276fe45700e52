-- Take tokens from one token bucket, in one atomic step, on the server's clock.
--
-- One key per bucket, so the script touches one slot (Redis Cluster included).
-- Every worker process sharing the server shares the bucket.
--
-- KEYS[1] - the bucket, a hash <p>:rl:{<scope>:<owner>[:<task id>]}
--           fields "t" (tokens left, a decimal) and "at" (ms of that reading)
-- ARGV[1] - the refill rate, tokens per second (a decimal > 0)
-- ARGV[2] - the burst: the most tokens the bucket holds (an integer >= 1)
-- ARGV[3] - the tokens this call takes (an integer >= 1)
-- return - {1, 0}: taken; {0, wait_ms}: refused, enough tokens in wait_ms

local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local cur = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(cur[1])
local at = tonumber(cur[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
end

local taken = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  taken = 1
else
  wait = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 't', string.format('%.6f', tokens), 'at', now)
-- The key lives until the bucket is full again: a full bucket is no key.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {taken, wait}
