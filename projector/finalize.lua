-- Makes a poll's results final: replaces the live counts with the recount, records how
-- they compared, and bumps the version. Does nothing if the results are already final.
--
-- KEYS[1]  <ns>:{poll}:counts      KEYS[2]  <ns>:{poll}:meta
-- ARGV[1]  now (ms)   ARGV[2]  report (serialized RecountReport)
-- ARGV[3..] (option, count) pairs of the recount
--
-- Returns {1, version} when it finalized, {0, version} when already final.
if redis.call('HGET', KEYS[2], 'final') == '1' then
  return {0, tonumber(redis.call('HGET', KEYS[2], 'version') or '0')}
end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[2], 'final', '1', 'recount', ARGV[2], 'updated_at', ARGV[1])
local version = math.max(tonumber(redis.call('HGET', KEYS[2], 'version') or '0') + 1, tonumber(ARGV[1]))
redis.call('HSET', KEYS[2], 'version', version)
return {1, version}
