-- Moves the projector's read positions forward, only from the values it expects.
--
-- KEYS[1]  <ns>:pos:<log>
-- ARGV     (field, expected ("-1": absent), new) triples
--
-- Returns 1 when every position moved, 0 (and changes nothing) when any stored value
-- differs from the expected one.
for i = 1, #ARGV, 3 do
  local stored = redis.call('HGET', KEYS[1], ARGV[i])
  local expected = tonumber(ARGV[i + 1])
  if (stored == false and expected ~= -1) or (stored ~= false and tonumber(stored) ~= expected) then
    return 0
  end
end
for i = 1, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
end
return 1
