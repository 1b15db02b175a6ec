-- Token buckets shared by every command process.
--
-- Each bucket holds up to `burst` tokens and refills at `rate` tokens per second; taking
-- `cost` tokens succeeds only if that many are there (a refusal takes nothing).
--
-- KEYS     one hash per bucket
-- ARGV[1]  now (ms)   ARGV[2] rate (tokens/s)   ARGV[3] burst
-- ARGV[4..] the cost for each key, in order
-- Returns, per key, 0 when the tokens were taken, else the ms until they will be there.
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local ttl = math.ceil(burst / rate * 1000) + 1000
local out = {}
for i, key in ipairs(KEYS) do
  local cost = tonumber(ARGV[3 + i])
  local state = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(state[1]) or burst
  local last = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - last) * rate / 1000)
  if tokens >= cost then
    tokens = tokens - cost
    out[i] = 0
  else
    out[i] = math.ceil((cost - tokens) * 1000 / rate)
  end
  redis.call('HSET', key, 't', tostring(tokens), 'ts', now)
  redis.call('PEXPIRE', key, ttl)
end
return out
