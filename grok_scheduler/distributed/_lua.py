"""The two Lua scripts that hold every rule of the shared limiter, run atomically inside Redis.

State is one hash per API key and model::

    rps, tpm      the shared limits (0 = unlimited)     src   why the shared limits are so
    pr, pe        the process leading the probing up, and when its lease ends
    er, et        the limits in force since the last write (shared limits under the ceilings)
    rl, rt        request level and its time stamp     why   last change of any kind
    tl, tt        token level and its time stamp       pause no admission before this time
    urg, urt      an urgent caller waits until urg and needs urt tokens
    c:<process>   "rps tpm expiry": a live process's configured ceiling (one field per process)

The rules are LocalLimiter's, so the contract test expects the same answers from both: the same
capacities (a tenth of a second of requests and a quarter second of tokens kept in hand), a new
request bucket half full and a new token bucket full, debt capped at one bucket, a request with
no tokens never held by token debt.

**Ceilings.** Configured limits combine as the lowest: each call registers the caller's
configured limits under its process id with an expiry (refreshed by every call), and the limits
in force are the shared ones under the lowest live ceiling. A process never raises another's
ceiling, and never exceeds its own. Shared limits that came from configuration (``src`` is
``configured``) are not limits of their own: the ceilings are.

**One controller for the fleet.** Each process runs its own rate controller over the fleet's
counts; the script combines their changes as one controller would make them. A cut (or a first
estimate) from any process applies at once, for all, but never raises the shared limits: a
process that measured a little later must not undo a deeper cut made meanwhile. A raise that is
only a probe is applied only from the process holding the probing lease (four processes would
otherwise probe four times as fast as one): the one that last changed the limits for another
reason (it holds the episode's state, and recovers to what it measured), or any process once
the lease has lapsed (``pe``, ``probe_lease`` seconds after the holder's last change). Other
changes (a stated limit, the user's own call) apply as given.

**A missing key** is either fresh or lost (FLUSHDB, eviction, a failover). The caller says which
(it talked to the key within its time to live, or kept sending while Redis was away): a lost key
starts its buckets empty, not full, and takes back the caller's last known pause, so neither a
burst nor an end to a 429 pause comes out of losing the state.

Every time is Redis's own clock (``TIME``), so hosts with skewed clocks agree. Both scripts
first apply what the calling process has to report (credit given back, new limits, the server's
remaining counts, a pause), then :data:`ACQUIRE` decides one admission and :data:`UPDATE` just
stores. A denied caller learns how long to wait; when the wait is short the script *books* the
credit for it (the level goes below zero, so later callers queue behind).

Argument layout (strings; ``''`` means "not given"), shared by both scripts::

    1 burst_seconds  2 request_headroom_seconds  3 token_headroom_seconds  4 ttl_ms
    5 seed_rps  6 seed_tpm  7 seed_reason  8 lost  9 known_pause_seconds
    10 process_id  11 own_rps  12 own_tpm  13 ceiling_ttl_ms  14 leaving
    15 give_requests  16 give_tokens  17 set_rps  18 set_tpm  19 set_reason
    20 clamp_requests  21 clamp_tokens  22 pause_seconds  23 pause_reason
    24 change (set, cut or probe)  25 probe_lease_seconds

and, for :data:`ACQUIRE` only::

    26 tokens  27 priority  28 urgent_priority  29 reserve_share  30 max_booking  31 urgent_hold

Both return ``{status, wait, rps, tpm, paused_for, requests_level, tokens_level, why,
shared_rps, shared_tpm, src, led_elsewhere}`` as strings (Lua would truncate numbers to
integers): status is ``ok``, ``booked``, ``wait`` or ``stored``; ``rps`` and ``tpm`` are the
limits in force; ``led_elsewhere`` the seconds another process still leads the probing.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "COMMON_ARGS", "UPDATE"]

#: How many arguments the common block takes (the acquisition's own start after it).
COMMON_ARGS = 25

_PRELUDE = """
local key = KEYS[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local h = {}
local flat = redis.call('HGETALL', key)
for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end

local function given(i)
  local v = ARGV[i]
  if v == nil or v == '' then return nil end
  return tonumber(v)
end
local function fmt(x) return string.format('%.17g', x) end
-- Refill arithmetic leaves float dust (8.999999999 for 9), as in the local bucket.
local EPSILON = 1e-9

local burst, req_headroom = tonumber(ARGV[1]), tonumber(ARGV[2])
local tok_headroom, ttl_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
-- LocalLimiter's capacities: at least one whole request, or a slow limit admits nothing.
local function request_capacity(rate)
  return math.max(1, rate * (burst - math.min(req_headroom, 0.1 * burst)))
end
local function token_capacity(per_minute) return per_minute * (1 - tok_headroom / 60) end

local missing = h.src == nil
local lost = missing and ARGV[8] == '1'
local rps, tpm = tonumber(h.rps or '0'), tonumber(h.tpm or '0')
local src, why = h.src, h.why or 'configured'
local pause = tonumber(h.pause or '0')
local urg, urt = tonumber(h.urg or '0'), tonumber(h.urt or '0')
local er, et = tonumber(h.er or '0'), tonumber(h.et or '0')

local function refilled(level, stamp, rate, cap)
  local v = tonumber(level)
  if v == nil then return nil end
  local elapsed = now - tonumber(stamp or now)
  if elapsed > 0 then v = math.min(cap, v + elapsed * rate) end
  return v
end
local rl, tl -- levels at `now`; nil while that dimension is unlimited
if er > 0 then rl = refilled(h.rl, h.rt, er, request_capacity(er)) end
if et > 0 then tl = refilled(h.tl, h.tt, et / 60, token_capacity(et)) end

if missing then
  -- The caller's last view of the shared limits; a lost key also gets its last known pause.
  rps, tpm, src, why = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[7]
  local known = given(9)
  if lost and known ~= nil and now + known > pause then pause = now + known end
end

local function bounded(level, amount, cap)
  return math.max(-cap, math.min(cap, level + amount))
end
local give_r, give_t = tonumber(ARGV[15]), tonumber(ARGV[16])
if rl ~= nil and give_r ~= 0 then rl = bounded(rl, give_r, request_capacity(er)) end
if tl ~= nil and give_t ~= 0 then tl = bounded(tl, give_t, token_capacity(et)) end

local function lowest(a, b) -- 0 = no limit
  if a <= 0 then return b end
  if b <= 0 then return a end
  return math.min(a, b)
end

local function below(a, b) return a > 0 and (b <= 0 or a < b) end -- a stricter limit than b

local set_rps, change = given(17), ARGV[24]
local prober, lease_end = h.pr, tonumber(h.pe or '0')
if set_rps ~= nil then
  -- A probe upward counts only from the lease holder (or once the lease lapsed); any other
  -- change applies, and its maker leads the probing that follows.
  if change ~= 'probe' or prober == nil or lease_end <= now or prober == ARGV[10] then
    local new_r, new_t = set_rps, tonumber(ARGV[18])
    local leads = true
    if change == 'cut' and src ~= 'configured' then
      -- A cut never raises the shared limits: another process may have cut further meanwhile.
      -- Its maker leads only if it cut: the probing is led by the controller whose rate is
      -- in force, so that its recovery starts from that rate.
      leads = below(new_r, rps) or below(new_t, tpm) or prober == ARGV[10]
      new_r, new_t = lowest(new_r, rps), lowest(new_t, tpm)
    end
    rps, tpm, src, why = new_r, new_t, ARGV[19], ARGV[19]
    if leads then prober, lease_end = ARGV[10], now + tonumber(ARGV[25]) end
  end
end
if ARGV[14] == '1' and prober == ARGV[10] then prober = nil end -- it leaves: the lease lapses

-- Ceilings: register (or withdraw) the caller's, forget expired ones, take the lowest.
local own = 'c:' .. ARGV[10]
local own_r, own_t = given(11), given(12)
if ARGV[14] == '1' or (own_r == nil and own_t == nil) then
  if h[own] ~= nil then redis.call('HDEL', key, own) end
  h[own] = nil
else
  h[own] = fmt(own_r or 0) .. ' ' .. fmt(own_t or 0) .. ' ' .. fmt(now + tonumber(ARGV[13]) / 1000)
end
local cap_r, cap_t = 0, 0
for field, value in pairs(h) do
  if string.sub(field, 1, 2) == 'c:' then
    local r, t, expiry = string.match(value, '^(%S+) (%S+) (%S+)$')
    if expiry == nil or tonumber(expiry) <= now then
      redis.call('HDEL', key, field)
    else
      cap_r, cap_t = lowest(cap_r, tonumber(r)), lowest(cap_t, tonumber(t))
    end
  end
end
local shared_r, shared_t = rps, tpm
if src == 'configured' then shared_r, shared_t = 0, 0 end

-- The limits in force: a resize never raises a level (only a refill does). A newly limited
-- dimension starts as LocalLimiter's does (requests half full, tokens full), or empty on a lost
-- key (the server's bucket is not full either: this fleet kept sending) and when a 429 set the
-- limit (the server just said its bucket is empty: half a bucket would be refused at once).
local function start(cap, share)
  if lost or (set_rps ~= nil and change == 'cut') then return 0 end
  return cap * share
end
local new_r, new_t = lowest(shared_r, cap_r), lowest(shared_t, cap_t)
if new_r > 0 then
  local cap = request_capacity(new_r)
  if rl == nil then rl = start(cap, 0.5) else rl = math.min(rl, cap) end
else
  rl = nil
end
if new_t > 0 then
  local cap = token_capacity(new_t)
  if tl == nil then tl = start(cap, 1) else tl = math.min(tl, cap) end
else
  tl = nil
end
er, et = new_r, new_t

local clamp_r, clamp_t = given(20), given(21)
if clamp_r ~= nil and rl ~= nil then rl = math.min(rl, clamp_r) end
if clamp_t ~= nil and tl ~= nil then tl = math.min(tl, clamp_t) end

local pause_s = given(22)
if pause_s ~= nil and now + pause_s > pause then
  pause = now + pause_s
  why = ARGV[23]
end

local function save()
  local fields = {'rps', fmt(rps), 'tpm', fmt(tpm), 'src', src, 'why', why, 'pause', fmt(pause),
                  'urg', fmt(urg), 'urt', fmt(urt), 'er', fmt(er), 'et', fmt(et)}
  if h[own] ~= nil then
    fields[#fields + 1] = own; fields[#fields + 1] = h[own]
  end
  if prober ~= nil then
    fields[#fields + 1] = 'pr'; fields[#fields + 1] = prober
    fields[#fields + 1] = 'pe'; fields[#fields + 1] = fmt(lease_end)
  elseif h.pr ~= nil then
    redis.call('HDEL', key, 'pr', 'pe')
  end
  if rl ~= nil then
    fields[#fields + 1] = 'rl'; fields[#fields + 1] = fmt(rl)
    fields[#fields + 1] = 'rt'; fields[#fields + 1] = fmt(now)
  end
  if tl ~= nil then
    fields[#fields + 1] = 'tl'; fields[#fields + 1] = fmt(tl)
    fields[#fields + 1] = 'tt'; fields[#fields + 1] = fmt(now)
  end
  redis.call('HSET', key, unpack(fields))
  -- Forget the key a while after its last use, but never while a pause still holds.
  redis.call('PEXPIRE', key, math.ceil(ttl_ms + math.max(0, pause - now) * 1000))
end

local function reply(status, wait)
  local r, t = '', ''
  if rl ~= nil then r = fmt(rl) end
  if tl ~= nil then t = fmt(tl) end
  local elsewhere = 0 -- seconds another process still leads the probing
  if prober ~= nil and prober ~= ARGV[10] then elsewhere = math.max(0, lease_end - now) end
  return {status, fmt(wait), fmt(er), fmt(et), fmt(math.max(0, pause - now)), r, t, why,
          fmt(rps), fmt(tpm), src, fmt(elsewhere)}
end
"""

_UPDATE_TAIL = """
save()
return reply('stored', 0)
"""

_ACQUIRE_TAIL = """
local tokens = tonumber(ARGV[26])
local urgent = tonumber(ARGV[27]) <= tonumber(ARGV[28])
local reserve_share, max_booking, hold = tonumber(ARGV[29]), tonumber(ARGV[30]), tonumber(ARGV[31])
if urg <= now then urt = 0 end

-- Seconds until `need` is there; a need above the bucket waits for a full bucket (cap given).
local function delay(level, need, rate, cap)
  if level == nil or need <= 0 then return 0 end
  if cap ~= nil then need = math.min(need, cap) end
  if level >= need - EPSILON then return 0 end
  return (need - level) / rate
end

local need_t = 0
if tl ~= nil then need_t = math.min(tokens, token_capacity(et)) end
local paused = math.max(0, pause - now)
local wait = paused
if rl ~= nil then wait = math.max(wait, delay(rl, 1, er, request_capacity(er))) end
if tl ~= nil then wait = math.max(wait, delay(tl, tokens, et / 60, token_capacity(et))) end
local may_book = paused == 0
if not urgent and urg > now then
  -- Another process has urgent work waiting: leave it the last part of the bucket, so it gets
  -- the next credit instead of racing a flood of less urgent requests for it.
  local held = paused
  if rl ~= nil then
    local reserve_r = math.max(1, reserve_share * request_capacity(er))
    held = math.max(held, delay(rl, 1 + reserve_r, er, nil))
  end
  if tl ~= nil then held = math.max(held, delay(tl, need_t + urt, et / 60, nil)) end
  wait = math.min(held, math.max(wait, urg - now))
  may_book = false
end

local status = 'wait'
if wait <= 0 then
  status = 'ok'
elseif may_book and wait <= max_booking then
  status = 'booked'
end
if status ~= 'wait' then
  -- Debt is capped at one bucket, as locally: one absurd answer must not stall the fleet.
  if rl ~= nil then rl = math.max(rl - 1, -request_capacity(er)) end
  if tl ~= nil and tokens > 0 then tl = math.max(tl - tokens, -token_capacity(et)) end
end
if urgent and wait > 0 then
  urg = math.max(urg, now + wait + hold)
  urt = math.max(urt, need_t)
end
save()
return reply(status, math.max(wait, 0))
"""

#: Apply the caller's report and store it (settle, refund, limits, pause, header sync, ceiling).
UPDATE = _PRELUDE + _UPDATE_TAIL

#: Apply the caller's report, then admit, book or deny one request with its tokens.
ACQUIRE = _PRELUDE + _ACQUIRE_TAIL
