//! The one script a shared breaker runs: publish (or withdraw) this
//! replica's evidence, take or give back the probe lease, and read the
//! fleet's live evidence, atomically and on Redis's own clock.

/// One synchronisation of a replica with the fleet, in milliseconds on
/// Redis's clock.
///
/// `KEYS[1]`: the evidence, a sorted set `{steadfast:cb:<key>}` of
/// replica ids scored by the end of their open period. `KEYS[2]`: the probe
/// lease, `{steadfast:cb:<key>}:probe` (same hash tag: same Cluster slot).
///
/// `ARGV`: the replica's id; its evidence (`> 0`: "open for this many more
/// milliseconds", `0`: withdraw it, `-1`: leave it as it is); `open_for` in
/// milliseconds (the set is kept alive for at least twice the longest of
/// it and the evidence just written); the lease operation (`1`: take it, or
/// extend it if already ours; `0`: give it back if ours; `2`: leave it);
/// the lease's time to live.
///
/// Returns `{now, lease, score...}`: Redis's time, the lease answer (its
/// TTL if taken, minus the holder's remaining TTL if someone else holds it,
/// 0 otherwise) and the expiry of every other replica's live evidence.
/// Expired evidence is removed first. This replica's own is left out: the
/// replica can only be opened by the fleet while it holds none, and a score
/// of its own in the set is then one it has withdrawn since this run was
/// sent (a reset racing a refresh that renewed it).
pub(super) const SYNC: &str = r"
local now = math.floor(now_us / 1000)
local me = ARGV[1]
local evidence = tonumber(ARGV[2])
local open = tonumber(ARGV[3])
local lease_op = tonumber(ARGV[4])
local lease_ttl = tonumber(ARGV[5])
-- Evidence that has expired is no evidence.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if evidence > 0 then
  redis.call('ZADD', KEYS[1], now + evidence, me)
  -- The set outlives every open period it records, twice over.
  local keep = math.max(evidence, open) * 2
  if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
elseif evidence == 0 then
  redis.call('ZREM', KEYS[1], me)
end
local lease = 0
local holder = redis.call('GET', KEYS[2])
if lease_op == 1 then
  if holder == me then
    redis.call('PEXPIRE', KEYS[2], lease_ttl)
    lease = lease_ttl
  elseif not holder then
    redis.call('SET', KEYS[2], me, 'PX', lease_ttl)
    lease = lease_ttl
  else
    lease = -math.max(redis.call('PTTL', KEYS[2]), 1)
  end
elseif lease_op == 0 and holder == me then
  redis.call('DEL', KEYS[2])
end
local out = {now, lease}
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #live, 2 do
  if live[i] ~= me then out[#out + 1] = tonumber(live[i + 1]) end
end
return out
";
