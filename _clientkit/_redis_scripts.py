"""The Lua scripts of `RedisLimiter`: one atomic script per step, all keys in one hash tag.

Times are microseconds on the Redis host's clock (`TIME`), never a client's. Every script begins with the
same prelude, which reads the clock (never backwards: the last `now` is kept), detects lost state, turns
expired leases into stamps at their deadline, drops stamps `period` old and waiters whose heartbeat lapsed.

Keys: 1 `state` (hash: epoch, clock, paused, probing, probe, pauses, probe_pauses, tokens, tokens_at,
tickets, ids; no TTL, so that its absence means the state was lost), 2 `live` (zset: slot id -> lease
deadline), 3 `done` (zset: slot id -> stamp), 4 `queue` (zset: waiter -> ticket), 5 `beats` (zset:
waiter -> heartbeat deadline).

Common arguments: 1 max_requests, 2 period, 3 rate per microsecond (0: no pacing), 4 burst, 5 the epoch
this client last saw ("" if none), 6 "1" to pause one period on a store found empty by a fresh client,
7 TTL of the zsets in ms. Step arguments follow from 8. Every step returns `epoch`, `lost` ("1" when this
call found the state lost and paused), then its answer.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "LEAVE", "PAUSE", "RELEASE"]

_PRELUDE = """
local state, live, done, queue, beats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local max_requests = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local known = ARGV[5]
local cold = ARGV[6] == '1'
local ttl = tonumber(ARGV[7])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local lost = '0'
local epoch = redis.call('HGET', state, 'epoch')
if not epoch then
  epoch = tostring(now)
  redis.call('HSET', state, 'epoch', epoch, 'clock', now, 'paused', 0, 'probing', 0, 'probe', '',
    'pauses', 0, 'probe_pauses', 0, 'tokens', burst, 'tokens_at', now)
  if known ~= '' or cold then
    -- restarted without persistence (or a first start): the account's window may hold requests we
    -- no longer see, so wait one period instead of opening an empty window
    redis.call('HSET', state, 'paused', now + period)
    lost = '1'
  end
else
  local last = tonumber(redis.call('HGET', state, 'clock'))
  if last > now then now = last end
  redis.call('HSET', state, 'clock', now)
  if known ~= '' and known ~= epoch then
    -- another client re-created lost state: make sure its pause of one period holds
    local paused = tonumber(redis.call('HGET', state, 'paused'))
    local until_ = tonumber(epoch) + period
    if until_ > paused then redis.call('HSET', state, 'paused', until_) end
  end
end

local probe = redis.call('HGET', state, 'probe')
local expired = redis.call('ZRANGEBYSCORE', live, '-inf', now, 'WITHSCORES')
for i = 1, #expired, 2 do
  -- the holder died (or stalled): its request still counts, stamped at its lease deadline
  redis.call('ZADD', done, expired[i + 1], expired[i])
  redis.call('ZREM', live, expired[i])
  if expired[i] == probe then
    probe = ''
    redis.call('HSET', state, 'probe', '')
  end
end
redis.call('ZREMRANGEBYSCORE', done, '-inf', now - period)
local dead = redis.call('ZRANGEBYSCORE', beats, '-inf', now)
for i = 1, #dead do
  redis.call('ZREM', queue, dead[i])
  redis.call('ZREM', beats, dead[i])
end

local function keep()
  for _, key in ipairs({live, done, queue, beats}) do
    if redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ttl) end
  end
end
"""

ACQUIRE = (
    _PRELUDE
    + """
-- 8 waiter, 9 ticket ("" for a new one), 10 lease, 11 heartbeat margin, 12 poll
local waiter, ticket = ARGV[8], ARGV[9]
local lease, margin, poll = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
if ticket == '' then ticket = redis.call('HINCRBY', state, 'tickets', 1) end
redis.call('ZADD', queue, ticket, waiter)
local rank = redis.call('ZRANK', queue, waiter)

local paused = tonumber(redis.call('HGET', state, 'paused'))
local probing = redis.call('HGET', state, 'probing') == '1'
local free = max_requests - redis.call('ZCARD', live) - redis.call('ZCARD', done)
local room = free
if probing then
  if probe ~= '' then room = 0 elseif room > 1 then room = 1 end
end
local tokens = burst
if rate > 0 then
  tokens = tonumber(redis.call('HGET', state, 'tokens'))
  local at = tonumber(redis.call('HGET', state, 'tokens_at'))
  tokens = math.min(burst, tokens + (now - at) * rate)
  local whole = math.floor(tokens + 1e-9)
  if whole < room then room = whole end
end

if now >= paused and rank < room then
  redis.call('ZREM', queue, waiter)
  redis.call('ZREM', beats, waiter)
  local id = tostring(redis.call('HINCRBY', state, 'ids', 1))
  redis.call('ZADD', live, now + lease, id)
  if rate > 0 then redis.call('HSET', state, 'tokens', tostring(tokens - 1), 'tokens_at', now) end
  if probing then
    redis.call('HSET', state, 'probe', id, 'probe_pauses', redis.call('HGET', state, 'pauses'))
  end
  keep()
  return {epoch, lost, 1, id}
end

-- not yet: how long until it may be, when that is known; else poll
local wait = 0
local unknown = false
if now < paused then wait = paused - now end
if rank >= free or probing then
  if probing then
    unknown = true  -- the probe must come back first
  else
    local oldest = redis.call('ZRANGE', done, rank - free, rank - free, 'WITHSCORES')
    if oldest[2] then
      wait = math.max(wait, tonumber(oldest[2]) + period - now)
    else
      unknown = true  -- a lease must end first
    end
  end
end
if rate > 0 and rank + 1 > tokens then
  wait = math.max(wait, (rank + 1 - tokens) / rate)
end
if unknown then wait = math.max(wait, poll) end
wait = math.max(1, math.ceil(wait))
redis.call('ZADD', beats, now + wait + margin, waiter)
keep()
return {epoch, lost, 0, wait, ticket}
"""
)

RELEASE = (
    _PRELUDE
    + """
-- 8 slot id, 9 "1" if abandoned, 10 grace
local id, abandoned, grace = ARGV[8], ARGV[9] == '1', tonumber(ARGV[10])
local stamp = now
if abandoned then stamp = now + grace end
if redis.call('ZREM', live, id) == 1 then
  redis.call('ZADD', done, stamp, id)
else
  -- its lease ended first (stamped at the deadline) or the state was lost: the later stamp wins
  redis.call('ZADD', done, 'GT', stamp, id)
end
if id == probe then
  redis.call('HSET', state, 'probe', '')
  if not abandoned and redis.call('HGET', state, 'pauses') == redis.call('HGET', state, 'probe_pauses') then
    redis.call('HSET', state, 'probing', 0)
  end
end
keep()
return {epoch, lost}
"""
)

PAUSE = (
    _PRELUDE
    + """
-- 8 seconds of pause, in microseconds
local until_ = now + tonumber(ARGV[8])
if until_ > tonumber(redis.call('HGET', state, 'paused')) then
  redis.call('HSET', state, 'paused', until_)
end
redis.call('HINCRBY', state, 'pauses', 1)
redis.call('HSET', state, 'probing', 1)
return {epoch, lost}
"""
)

LEAVE = (
    _PRELUDE
    + """
-- 8 waiter: a cancelled waiter gives up its place at once
redis.call('ZREM', queue, ARGV[8])
redis.call('ZREM', beats, ARGV[8])
return {epoch, lost}
"""
)
