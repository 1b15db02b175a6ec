-- Applies the decisions of one source partition for one poll, at most once.
--
-- KEYS[1]  <ns>:{poll}:counts      KEYS[2]  <ns>:{poll}:meta
-- ARGV[1]  guard field (o:<log>:<partition>)
-- ARGV[2]  the guard value the caller expects to find ("-1": absent)
-- ARGV[3]  the new guard value: the highest source offset in this update
-- ARGV[4]  now, in ms
-- ARGV[5]  number of (option, delta) pairs that follow, then pairs, then
--          (field, value) pairs to set on the meta hash (e.g. drained markers)
--
-- Returns {1, new version} when applied, {0, stored guard} when the guard is not what
-- the caller expected (another projector applied it, or Redis lost writes): the caller
-- then re-reads its positions and replays; nothing was changed.
local stored = redis.call('HGET', KEYS[2], ARGV[1])
local expected = tonumber(ARGV[2])
if (stored == false and expected ~= -1) or (stored ~= false and tonumber(stored) ~= expected) then
  return {0, stored or '-1'}
end
local pairs_count = tonumber(ARGV[5])
local i = 6
-- Final counts came from the recount and never change again (a replay after Redis
-- lost data must not add to them); the guard still advances.
local final = redis.call('HGET', KEYS[2], 'final') == '1'
for _ = 1, pairs_count do
  if not final then
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
while i <= #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3], 'updated_at', ARGV[4])
-- Versions grow by at least one per change and never fall behind the clock (see
-- bump_version.lua): they stay monotonic across a read-model rebuild.
local version = math.max(tonumber(redis.call('HGET', KEYS[2], 'version') or '0') + 1, tonumber(ARGV[4]))
redis.call('HSET', KEYS[2], 'version', version)
return {1, version}
