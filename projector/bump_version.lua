-- Moves a poll's version forward: to max(version + 1, now in ms).
--
-- Versions only ever grow, by at least one per change. Tying them to the clock keeps
-- them growing across a read-model rebuild too: a namespace built a moment ago starts
-- above every version readers saw in the old one.
--
-- KEYS[1]  <ns>:{poll}:meta     ARGV[1]  now (ms)       Returns the new version.
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local now = tonumber(ARGV[1])
local version = math.max(current + 1, now)
redis.call('HSET', KEYS[1], 'version', version)
return version
