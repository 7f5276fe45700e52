-- Remove a batch of one shard's expired tasks and every index entry of
-- theirs, in one atomic step, and wake their waiters.  No SCAN/KEYS: the
-- shard's expiry index names each task's keys (cost: O(k log n) for k tasks
-- removed).
--
-- Each expiry member is "<created_ms:16>:<seq:16>:<id>:<owner>" (the list
-- member, then the owner), so a task whose hash Redis already dropped (the
-- retention backstop) still has its index entries removed.  The keys built
-- from a member carry the shard's tag: the script touches one slot.
--
-- KEYS[1] - the shard's expiry index <tag>:expiry
-- KEYS[2] - the shard's task count   <tag>:count
-- ARGV[1] - now, epoch ms, by the store's clock: tasks expiring at or before
--           it are removed
-- ARGV[2] - the most tasks to remove in this call
-- ARGV[3] - the shard's tag "{<p>:<k>}"
-- return - {entries, removed}: expiry entries taken (a full batch: call again),
--          and how many of them were tasks still held

local entries = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE',
                           'LIMIT', 0, tonumber(ARGV[2]))
return {#entries, remove_entries(ARGV[3], entries, KEYS[1], KEYS[2])}
