//! The shared GCRA step, run atomically by Redis: one key per instance,
//! Redis's own clock, partial grants for leases.

/// GCRA over one key, in microseconds on Redis's clock.
///
/// `KEYS[1]`: the theoretical arrival time (TAT), `{steadfast:rl:<key>}`.
/// `ARGV`: interval (µs per token), capacity (interval × burst, µs), `need`
/// (the fewest tokens worth granting), `want` (the most to grant).
/// Returns `{granted, wait_us, ahead_us}`: `granted` in `need..=want` and
/// `0`, or `0` and the wait until `need` tokens would be free; and how far
/// the TAT is ahead of now after it, which is how long until the bucket is
/// full again (what `RateLimiter::quota` reports).
///
/// Microseconds, not the local limiter's nanoseconds: Lua numbers are
/// doubles, exact up to 2^53, and microseconds since 1970 stay below that
/// (nanoseconds would not).
pub(super) const GCRA: &str = r"
local now = now_us
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local need = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
-- A missing key is a full bucket: the TAT is at most now.
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
-- Tokens free now: how many intervals the TAT may still move before it
-- lands more than the capacity ahead of now (the local limiter's rule).
local free = math.floor((now + capacity - tat) / interval)
if free >= need then
  -- Grant as many as wanted and free; the TAT moves by each one.
  local granted = math.min(free, want)
  local new_tat = tat + granted * interval
  -- The key expires when the bucket would be full again: same answer, no memory.
  redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
  return {granted, 0, new_tat - now}
end
-- Not enough: how long until `need` tokens fit under the capacity.
return {0, tat + need * interval - capacity - now, tat - now}
";

/// Shared backpressure: no token for anyone on this key before `now +
/// pause`, then tokens at the rate (the local `pause`'s rule, fleet-wide).
///
/// `KEYS[1]`: the TAT. `ARGV`: pause, interval, capacity (µs). The TAT only
/// ever moves forward: a shorter pause than one in force changes nothing.
pub(super) const PAUSE: &str = r"
local now = now_us
local pause = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
-- The TAT at which exactly one token is free when the pause ends.
local paused = now + pause + capacity - interval
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if paused > tat then
  redis.call('SET', KEYS[1], paused, 'PX', math.ceil((paused - now) / 1000) + 1)
end
return 1
";
