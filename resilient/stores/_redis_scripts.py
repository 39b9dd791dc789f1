"""The Lua scripts behind :class:`resilient.stores.RedisStore`, and its key layout.

Every fleet transition happens inside one of these scripts, so Redis runs it
atomically: when many instances race for the same transition, exactly one
script call makes it and reports it as *won*.  Time is always Redis server time
(``redis.call('TIME')``), never a host's clock.

Keys of one breaker (``P`` is the store prefix, ``N`` the breaker name with every
character outside ``[A-Za-z0-9_.~-]`` percent-encoded, so spaces, colons, braces
and non-ASCII names cannot collide or break the layout; the braces make the
three keys one Redis Cluster hash slot)::

    P:{N}          hash: the fleet state (fields below)
    P:{N}:leases   sorted set: half-open trial permits, scored by expiry (ms)
    P:{N}:inst     hash: instance id -> failures it reported since the last success

Hash fields: ``name``, ``state`` (a :class:`~resilient.State` value; a missing
hash reads as closed), ``epoch`` (bumped on every transition), ``ver`` (bumped
on every write; orders replies), ``failures`` (consecutive, fleet-wide),
``total`` (failures since the last reset), ``opened_at``/``retry_at`` (server
ms), ``recovery`` (current recovery timeout, ms, after backoff), ``trial_ok``,
``reason``, ``last_error``, ``cmd_id``/``cmd_state``/``cmd_reason`` (the last
operator command), ``inc`` (changes when the hash is recreated), and ``cfg_*``
(the settings the instances last reported, used by the operator commands).
All keys expire after the store's ``key_ttl`` without writes (``PEXPIRE`` is
refreshed on every write, and on a sync of a breaker that is in use).

Every script takes the same ``KEYS`` (hash, leases, instances) and ``ARGV``:

    1 name                2 failure_threshold    3 success_threshold
    4 recovery ms         5 half_open_max_calls  6 half_open_max_wait ms
    7 quorum              8 recovery_backoff     9 max_recovery ms (-1: none)
    10 key ttl ms         11 jitter factor       12 instance id
    13.. script-specific

An empty settings argument means "use the value the instances last reported"
(the operator commands do not know a breaker's settings).  Every script returns
the snapshot built by ``snap`` (see :data:`SNAPSHOT_FIELDS`).
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["ADMIT", "COMMAND", "RECORD", "SNAPSHOT_FIELDS", "SYNC", "breaker_keys", "key_pattern"]

#: The fields of a script's reply, in order.
SNAPSHOT_FIELDS = (
    "state",
    "epoch",
    "ver",
    "failures",
    "retry_in_ms",
    "reason",
    "cmd_id",
    "cmd_state",
    "inc",
    "in_flight",
    "won_old",
    "won_new",
    "won_reason",
    "lease",
    "allowed",
    "expired",
)


def breaker_keys(prefix: str, name: str) -> tuple[str, str, str]:
    """The three keys of breaker ``name`` under ``prefix`` (hash, leases, instances)."""
    base = f"{prefix}:{{{quote(name, safe='')}}}"
    return base, f"{base}:leases", f"{base}:inst"


def key_pattern(prefix: str) -> str:
    """A SCAN pattern matching the state hash of every breaker under ``prefix``."""
    escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix)
    return f"{escaped}:{{*}}"


_PRELUDE = r"""
local H, L, I = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function setting(i, field, default)
  local v = ARGV[i]
  if v ~= nil and v ~= '' then return tonumber(v) end
  v = redis.call('HGET', H, field)
  if v then return tonumber(v) end
  return default
end

local threshold = setting(2, 'cfg_threshold', 5)
local successes = setting(3, 'cfg_successes', 2)
local base_recovery = setting(4, 'cfg_recovery', 30000)
local hmax = setting(5, 'cfg_hmax', 1)
local hwait = setting(6, 'cfg_hwait', base_recovery)
local quorum = setting(7, 'cfg_quorum', 1)
local backoff = setting(8, 'cfg_backoff', 1)
local max_recovery = setting(9, 'cfg_max_recovery', -1)
local ttl = setting(10, 'cfg_ttl', 3600000)
local jitter = tonumber(ARGV[11]) or 1
local inst = ARGV[12]

local function ensure()
  if redis.call('EXISTS', H) == 0 then
    redis.call('HSET', H, 'name', ARGV[1], 'state', 'closed', 'epoch', 0, 'ver', 0,
      'failures', 0, 'total', 0, 'inc', now .. '/' .. inst, 'created_at', now)
  end
end

local function remember_settings()
  if ARGV[2] ~= '' then
    redis.call('HSET', H, 'cfg_threshold', ARGV[2], 'cfg_successes', ARGV[3],
      'cfg_recovery', ARGV[4], 'cfg_hmax', ARGV[5], 'cfg_hwait', ARGV[6],
      'cfg_quorum', ARGV[7], 'cfg_backoff', ARGV[8], 'cfg_max_recovery', ARGV[9],
      'cfg_ttl', ARGV[10])
  end
end

local function touch()
  local rec = tonumber(redis.call('HGET', H, 'recovery')) or base_recovery
  local keep = math.max(ttl, 2 * math.max(rec, base_recovery) + hwait)
  redis.call('PEXPIRE', H, keep)
  redis.call('PEXPIRE', L, keep)
  redis.call('PEXPIRE', I, keep)
end

local function written()
  redis.call('HINCRBY', H, 'ver', 1)
  redis.call('HSET', H, 'updated_at', now)
  remember_settings()
  touch()
end

local function transition(new)
  redis.call('HINCRBY', H, 'epoch', 1)
  redis.call('HSET', H, 'state', new, 'failures', 0, 'trial_ok', 0, 'changed_at', now)
  redis.call('DEL', L, I)
end

local function open_for(delay, reason)
  transition('open')
  redis.call('HSET', H, 'opened_at', now, 'retry_at', now + math.floor(delay * jitter),
    'recovery', delay, 'reason', reason)
end

local function snap(won_old, won_new, won_reason, lease, allowed, expired)
  local f = redis.call('HMGET', H, 'state', 'epoch', 'ver', 'failures', 'retry_at',
    'reason', 'cmd_id', 'cmd_state', 'inc')
  local st = f[1] or 'closed'
  local in_flight = redis.call('ZCARD', L)
  local retry_in = -1
  if st == 'open' then
    retry_in = math.max(0, (tonumber(f[5]) or now) - now)
  elseif st == 'half_open' then
    retry_in = 0
    if in_flight >= hmax then
      local first = redis.call('ZRANGE', L, 0, 0, 'WITHSCORES')
      if first[2] then retry_in = math.max(0, tonumber(first[2]) - now) end
    end
  end
  return {st, tonumber(f[2]) or 0, tonumber(f[3]) or 0, tonumber(f[4]) or 0, retry_in,
    f[6] or '', f[7] or '', f[8] or '', f[9] or '', in_flight,
    won_old or '', won_new or '', won_reason or '', lease or '', allowed or 0, expired or 0}
end
"""

#: Read the fleet state; with ARGV[13] == '1' also register the breaker and
#: refresh its keys' expiry (done now and then while the breaker is in use).
SYNC = (
    _PRELUDE
    + r"""
if ARGV[13] == '1' then
  ensure()
  remember_settings()
  touch()
end
return snap()
"""
)

#: Ask for admission when the fleet is not plainly closed.  ARGV[13]: the lease
#: id to grant if a half-open permit is free.  Moves open -> half_open when the
#: recovery timeout has passed (Redis time); the caller that does it wins it.
ADMIT = (
    _PRELUDE
    + r"""
local st = redis.call('HGET', H, 'state')
if not st then return snap('', '', '', '', 1, 0) end
local wo, wn, wr = '', '', ''
if st == 'open' then
  if now < (tonumber(redis.call('HGET', H, 'retry_at')) or 0) then
    return snap('', '', '', '', 0, 0)
  end
  local opened = tonumber(redis.call('HGET', H, 'opened_at')) or now
  wr = string.format('recovery timeout passed after %.1f s', (now - opened) / 1000)
  transition('half_open')
  wo, wn, st = 'open', 'half_open', 'half_open'
end
if st == 'half_open' then
  local expired = redis.call('ZREMRANGEBYSCORE', L, '-inf', now)
  if redis.call('ZCARD', L) < hmax then
    redis.call('ZADD', L, now + hwait, ARGV[13])
    written()
    return snap(wo, wn, wr, ARGV[13], 1, expired)
  end
  if wo ~= '' or expired > 0 then written() end
  return snap(wo, wn, wr, '', 0, expired)
end
if st == 'forced_open' then return snap('', '', '', '', 0, 0) end
return snap('', '', '', '', 1, 0)
"""
)

#: Report an outcome.  ARGV[13]: 'success', 'failure' or 'neutral'; ARGV[14]:
#: the lease the call held ('' for none); ARGV[15]: the error (failures).
RECORD = (
    _PRELUDE
    + r"""
local outcome, lease, err = ARGV[13], ARGV[14], ARGV[15]
local st = redis.call('HGET', H, 'state')
if not st then
  if outcome ~= 'failure' then return snap() end
  ensure()
  st = 'closed'
end
local held = 0
if lease ~= '' then held = redis.call('ZREM', L, lease) end
local changed = held == 1
local wo, wn, wr = '', '', ''
if outcome == 'failure' then
  changed = true
  redis.call('HINCRBY', H, 'total', 1)
  redis.call('HSET', H, 'last_error', err, 'last_failure_at', now)
  if held == 1 and st == 'half_open' then
    local delay = (tonumber(redis.call('HGET', H, 'recovery')) or base_recovery) * backoff
    if max_recovery >= 0 and delay > max_recovery then delay = max_recovery end
    wr = 'trial call failed (last: ' .. err .. ')'
    open_for(math.floor(delay), wr)
    wo, wn = 'half_open', 'open'
  elseif st == 'closed' or st == 'disabled' then
    local n = redis.call('HINCRBY', H, 'failures', 1)
    redis.call('HINCRBY', I, inst, 1)
    local distinct = redis.call('HLEN', I)
    if st == 'closed' and n >= threshold and distinct >= quorum then
      wr = n .. ' consecutive failures from ' .. distinct .. ' instance'
        .. (distinct == 1 and '' or 's') .. ' (last: ' .. err .. ')'
      open_for(base_recovery, wr)
      wo, wn = 'closed', 'open'
    end
  end
elseif outcome == 'success' then
  if held == 1 and st == 'half_open' then
    local ok = redis.call('HINCRBY', H, 'trial_ok', 1)
    if ok >= successes then
      wr = ok .. ' successful trial call' .. (ok == 1 and '' or 's')
      transition('closed')
      redis.call('HSET', H, 'recovery', base_recovery, 'reason', '')
      wo, wn = 'half_open', 'closed'
    end
  elseif (st == 'closed' or st == 'disabled')
      and (tonumber(redis.call('HGET', H, 'failures')) or 0) > 0 then
    redis.call('HSET', H, 'failures', 0)
    redis.call('DEL', I)
    changed = true
  end
end
if changed then written() end
return snap(wo, wn, wr, '', 1, 0)
"""
)

#: An operator action.  ARGV[13]: the new state ('closed' resets, 'open' trips
#: for the recovery timeout, 'forced_open' holds, 'disabled'); ARGV[14]: the
#: reason; ARGV[15]: a unique command id (instances follow a reset or a disable
#: they have not seen yet).
COMMAND = (
    _PRELUDE
    + r"""
local new, why, cmd = ARGV[13], ARGV[14], ARGV[15]
ensure()
local old = redis.call('HGET', H, 'state') or 'closed'
if new == 'closed' then
  transition('closed')
  redis.call('HSET', H, 'recovery', base_recovery, 'reason', '', 'total', 0, 'last_error', '')
elseif new == 'open' then
  open_for(base_recovery, why)
elseif new == 'forced_open' then
  transition('forced_open')
  redis.call('HSET', H, 'reason', why, 'opened_at', now)
  redis.call('HDEL', H, 'retry_at')
elseif new == 'disabled' then
  transition('disabled')
  redis.call('HSET', H, 'reason', '')
else
  return redis.error_reply('unknown breaker state ' .. new)
end
redis.call('HSET', H, 'cmd_id', cmd, 'cmd_state', new, 'cmd_reason', why, 'cmd_at', now)
written()
return snap(old, new, why, '', 1, 0)
"""
)
