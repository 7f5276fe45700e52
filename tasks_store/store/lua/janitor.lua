-- Release the janitor's sweep lock if this process still holds it (compare
-- and delete, one step), so a sweep that outlived its lock never releases
-- the next holder's.  The lock itself is taken with SET key token NX PX ms.
--
-- KEYS[1] - the lock <p>:janitor:lock
-- ARGV[1] - the token the lock was taken with
-- return - 1 if released, 0 if another holder has it (or nobody)

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
