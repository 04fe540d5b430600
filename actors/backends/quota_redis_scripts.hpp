#pragma once

// The Lua scripts of the Redis quota backend (quota_redis.cpp), kept apart
// from the C++ that builds their arguments and reads their replies.

namespace vigil::quota_scripts {

// KEYS: counter and refund key of each counter (1-based index i: KEYS[2i-1],
// KEYS[2i]). ARGV: the expiry (EXPIREAT) of each counter in KEYS order,
// then the run count, then per run: check count n, quota count, quantity,
// over_accept_once (0/1), then per quota: counter index and limit (-1 =
// unlimited). Per run the reply holds k (how many of the n checks, from the
// first, are accepted) and per quota a flag: 1 if it rejects the checks
// after the first k, + 2 if it is exhausted after the run. The reply is one
// string of integers separated by spaces (cheaper than a multi-bulk reply
// of integers on both sides).
// Per check the rule is Relay's is_rate_limited.lua: rejected when
// consumed + quantity > limit, or consumed >= limit for a quantity of 0 or
// over_accept_once; if no quota rejects, every quota is incremented.
// Counters are read at once (MGET) and written once at the end; EXPIREAT
// goes with the write that creates a counter (its value is the same for
// every write in the window, so repeating it would change nothing).
inline constexpr const char* batch_lua = R"lua(
local nkeys = #KEYS / 2
local raw = {}
local i = 1
while i <= #KEYS do
  local j = math.min(i + 3999, #KEYS)
  local vs = redis.call('MGET', unpack(KEYS, i, j))
  for x = 1, #vs do raw[i + x - 1] = vs[x] end
  i = j + 1
end
local val = {}
local fresh = {}
for c = 1, nkeys do
  local v = tonumber(raw[2 * c - 1])
  if v == nil then
    fresh[c] = true
    v = 0
  end
  val[c] = v - (tonumber(raw[2 * c]) or 0)
end
local inc = {}
local function consumed(c)
  return val[c]
end
local out = {}
local idxs = {}
local limits = {}
local a = nkeys + 2
for _ = 1, tonumber(ARGV[nkeys + 1]) do
  local n = tonumber(ARGV[a])
  local nq = tonumber(ARGV[a + 1])
  local qty = tonumber(ARGV[a + 2])
  local once = ARGV[a + 3] == '1'
  local b = a + 4
  local k = n
  for q = 1, nq do
    local idx = tonumber(ARGV[b + 2 * q - 2])
    local limit = tonumber(ARGV[b + 2 * q - 1])
    idxs[q] = idx
    limits[q] = limit
    if limit >= 0 then
      local c = consumed(idx)
      local cap
      if c >= limit then
        cap = 0
      elseif qty == 0 then
        cap = n
      elseif once then
        cap = math.ceil((limit - c) / qty)
      else
        cap = math.floor((limit - c) / qty)
      end
      if cap < k then k = cap end
    end
  end
  out[#out + 1] = k
  if k > 0 and qty > 0 then
    local add = k * qty
    for q = 1, nq do
      local idx = idxs[q]
      val[idx] = consumed(idx) + add
      inc[idx] = (inc[idx] or 0) + add
    end
  end
  for q = 1, nq do
    local limit = limits[q]
    local flag = 0
    if limit >= 0 then
      local c = consumed(idxs[q])
      if k < n then
        local rej
        if qty == 0 or once then rej = c >= limit else rej = c + qty > limit end
        if rej then flag = 1 end
      end
      if c >= limit then flag = flag + 2 end
    end
    out[#out + 1] = flag
  end
  a = b + 2 * nq
end
for idx, add in pairs(inc) do
  redis.call('INCRBY', KEYS[2 * idx - 1], add)
  if fresh[idx] then
    redis.call('EXPIREAT', KEYS[2 * idx - 1], ARGV[idx])
  end
end
return table.concat(out, ' ')
)lua";

// Relay's global_quota.lua: takes up to ARGV[3] of budget from the counter
// KEYS[1] (limit ARGV[1], expiry ARGV[2]); returns {taken, count}.
inline constexpr const char* global_lua = R"lua(
local limit = tonumber(ARGV[1])
local requested = tonumber(ARGV[3])
local count = tonumber(redis.call('GET', KEYS[1]) or 0)
if limit >= 0 and count >= limit then return {0, count} end
local budget = requested
if limit >= 0 then budget = math.min(limit - count, requested) end
redis.call('INCRBY', KEYS[1], budget)
if count == 0 then redis.call('EXPIREAT', KEYS[1], ARGV[2]) end
return {budget, count + budget}
)lua";

} // namespace vigil::quota_scripts
