"""The two Lua scripts that hold every rule of the shared limiter, run atomically inside Redis.

State is one hash per API key and model (O(1) fields, whatever the number of processes)::

    rps, tpm      the limits (0 = unlimited)           src   why the limits are what they are
    rl, rt        request level and its time stamp     why   last change of any kind
    tl, tt        token level and its time stamp       pause no admission before this time
    urg, urt      an urgent caller waits until urg and needs urt tokens

Every time is Redis's own clock (``TIME``), so hosts with skewed clocks agree. Both scripts
first apply what the calling process has to report (credit given back, new limits, the server's
remaining counts, a pause), then :data:`ACQUIRE` decides one admission and :data:`UPDATE` just
stores. A denied caller learns how long to wait; when the wait is short the script *books* the
credit for it (the level goes below zero, so later callers queue behind), and the caller uses
the booking after its sleep without another round trip.

Argument layout (strings; ``''`` means "not given"), shared by both scripts::

    1 burst_seconds  2 headroom  3 ttl_ms  4 seed_rps  5 seed_tpm  6 seed_reason  7 configure
    8 seed_empty  9 give_requests  10 give_tokens  11 set_rps  12 set_tpm  13 set_reason
    14 clamp_requests  15 clamp_tokens  16 pause_seconds  17 pause_reason

and, for :data:`ACQUIRE` only::

    18 tokens  19 priority  20 urgent_priority  21 reserve_share  22 max_booking  23 urgent_hold

Both return ``{status, wait, rps, tpm, paused_for, requests_level, tokens_level, why}`` as
strings (Lua would truncate numbers to integers): status is ``ok``, ``booked``, ``wait`` or
``stored``.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "COMMON_ARGS", "UPDATE"]

#: How many arguments the common block takes (the acquisition's own start after it).
COMMON_ARGS = 17

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

local burst, headroom, ttl_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- Keep part of the server's burst in hand (see LocalLimiter), but at least one request.
local function request_capacity(rate) return math.max(1, rate * burst * headroom) end
local function token_capacity(per_minute) return per_minute * headroom end

local rps, tpm = tonumber(h.rps or '0'), tonumber(h.tpm or '0')
local src, why = h.src, h.why or 'configured'
local pause = tonumber(h.pause or '0')
local urg, urt = tonumber(h.urg or '0'), tonumber(h.urt or '0')

local function refilled(level, stamp, rate, cap)
  local v = tonumber(level)
  if v == nil then return cap end
  local elapsed = now - tonumber(stamp or now)
  if elapsed > 0 then v = math.min(cap, v + elapsed * rate) end
  return v
end
local rl, tl -- levels at `now`; nil while that dimension is unlimited
if rps > 0 then rl = refilled(h.rl, h.rt, rps, request_capacity(rps)) end
if tpm > 0 then tl = refilled(h.tl, h.tt, tpm / 60, token_capacity(tpm)) end

-- A resize never raises a level (only a refill does); a newly limited dimension starts full,
-- or empty when the caller asks (it kept sending while Redis was away, e.g. after a restart
-- that lost the key, so the server's bucket is not full either).
local function resize(new_rps, new_tpm, reason, empty)
  if new_rps > 0 then
    local cap = request_capacity(new_rps)
    if rl == nil then rl = empty and 0 or cap else rl = math.min(rl, cap) end
  else
    rl = nil
  end
  if new_tpm > 0 then
    local cap = token_capacity(new_tpm)
    if tl == nil then tl = empty and 0 or cap else tl = math.min(tl, cap) end
  else
    tl = nil
  end
  rps, tpm, src, why = new_rps, new_tpm, reason, reason
end

-- A fresh key takes the caller's view of the limits; a key whose limits came from
-- configuration follows the newest configuration; learned limits are never overwritten here.
if src == nil or (ARGV[7] == '1' and src == 'configured') then
  resize(tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], src == nil and ARGV[8] == '1')
end

local give_r, give_t = tonumber(ARGV[9]), tonumber(ARGV[10])
if rl ~= nil and give_r ~= 0 then rl = math.min(request_capacity(rps), rl + give_r) end
if tl ~= nil and give_t ~= 0 then tl = math.min(token_capacity(tpm), tl + give_t) end

local set_rps = given(11)
if set_rps ~= nil then resize(set_rps, tonumber(ARGV[12]), ARGV[13], false) end

local clamp_r, clamp_t = given(14), given(15)
if clamp_r ~= nil and rl ~= nil then rl = math.min(rl, clamp_r) end
if clamp_t ~= nil and tl ~= nil then tl = math.min(tl, clamp_t) end

local pause_s = given(16)
if pause_s ~= nil and now + pause_s > pause then
  pause = now + pause_s
  why = ARGV[17]
end

local function save()
  local fields = {'rps', rps, 'tpm', tpm, 'src', src, 'why', why, 'pause', pause,
                  'urg', urg, 'urt', urt}
  if rl ~= nil then
    fields[#fields + 1] = 'rl'; fields[#fields + 1] = rl
    fields[#fields + 1] = 'rt'; fields[#fields + 1] = now
  end
  if tl ~= nil then
    fields[#fields + 1] = 'tl'; fields[#fields + 1] = tl
    fields[#fields + 1] = 'tt'; fields[#fields + 1] = now
  end
  redis.call('HSET', key, unpack(fields))
  -- Forget the key a while after its last use, but never while a pause still holds.
  redis.call('PEXPIRE', key, math.ceil(ttl_ms + math.max(0, pause - now) * 1000))
end

local function reply(status, wait)
  local r, t = '', ''
  if rl ~= nil then r = fmt(rl) end
  if tl ~= nil then t = fmt(tl) end
  return {status, fmt(wait), fmt(rps), fmt(tpm), fmt(math.max(0, pause - now)), r, t, why}
end
"""

_UPDATE_TAIL = """
save()
return reply('stored', 0)
"""

_ACQUIRE_TAIL = """
local tokens = tonumber(ARGV[18])
local urgent = tonumber(ARGV[19]) <= tonumber(ARGV[20])
local reserve_share, max_booking, hold = tonumber(ARGV[21]), tonumber(ARGV[22]), tonumber(ARGV[23])
if urg <= now then urt = 0 end

local function delay(level, need, rate)
  if level == nil or level >= need then return 0 end
  return (need - level) / rate
end

local need_t = 0
if tl ~= nil then need_t = math.min(tokens, token_capacity(tpm)) end
local paused = math.max(0, pause - now)
local wait = math.max(paused, delay(rl, 1, rps), delay(tl, need_t, tpm / 60))
local may_book = paused == 0
if not urgent and urg > now then
  -- Another process has urgent work waiting: leave it the last part of the bucket, so it gets
  -- the next credit instead of racing a flood of less urgent requests for it.
  local reserve_r = 0
  if rl ~= nil then reserve_r = math.max(1, reserve_share * request_capacity(rps)) end
  local held = math.max(paused, delay(rl, 1 + reserve_r, rps), delay(tl, need_t + urt, tpm / 60))
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
  if rl ~= nil then rl = rl - 1 end
  if tl ~= nil then tl = tl - tokens end
end
if urgent and wait > 0 then
  urg = math.max(urg, now + wait + hold)
  urt = math.max(urt, need_t)
end
save()
return reply(status, math.max(wait, 0))
"""

#: Apply the caller's report and store it (settle, refund, limits, pause, header sync).
UPDATE = _PRELUDE + _UPDATE_TAIL

#: Apply the caller's report, then admit, book or deny one request with its tokens.
ACQUIRE = _PRELUDE + _ACQUIRE_TAIL
