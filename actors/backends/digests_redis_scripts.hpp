#pragma once

// The Lua script of the Redis digests backend (digests_redis.cpp): one
// script, one command per call, as Sentry's digests.lua, so that every
// step of a command is atomic. The keys are Sentry's:
//
//   {ns}:s:w              zset  waiting timelines, scored by when they are due
//   {ns}:s:r              zset  ready timelines, scored by when they were due
//   {ns}:t:{t}            zset  timeline: record ids scored by record time
//   {ns}:t:{t}:d          zset  digest snapshot (opened, not yet closed)
//   {ns}:t:{t}:l          string last delivery time (Unix seconds)
//   {ns}:t:{t}:r:{id}     string record value
//   l:{ns}:t:{t}          string the timeline's lock (Sentry's LockManager
//                               prefixes "l:" to "{ns}:t:{t}")
//
// ARGV: command, namespace, ttl (seconds), now (Unix seconds), then the
// command's own arguments. KEYS is unused (one server holds every key, as
// in Sentry, which routes all of a timeline's keys by `{ns}:t:{t}`).
//
// ADD_MANY capacity chance (timeline id timestamp increment maximum)*
//   Sentry's ADD for each record in order (a record with the same id
//   replaces the older one), its value already stored (`SET {ns}:t:{t}:r:{id}
//   value EX ttl`, pipelined just before this call on the same connection,
//   so no timeline ever names a record whose value is not there yet): the
//   id is scored in the timeline, the timeline's ttl renewed, and the
//   schedule updated: a timeline already
//   ready stays so; one in neither set becomes ready, scored by the record
//   time (answer 1: deliver now); a waiting one moves to min(score +
//   increment, last delivery + maximum), or min(score, record time) with
//   no last delivery known. The schedules are read for all of the call's
//   timelines at once (ZMSCORE, MGET: Redis 6.2 or later) and written
//   once, which gives the answers sequential ADDs would. With a
//   capacity, each add draws truncation with `chance` (math.random seeded
//   with `now`, as Sentry); a timeline drawn is trimmed to its `capacity`
//   newest records once all of its records are in.
//   Reply: one character per record, "1" ready now, "0" not.
// SCHEDULE deadline
//   Moves waiting timelines scored in [0, deadline] to ready, keeping
//   their scores, 500 at a time. Reply: flat [timeline, score, ...].
// MAINTENANCE deadline
//   Moves ready timelines scored in [0, deadline] back to waiting.
//   Reply: how many moved.
// DIGEST_OPEN timeline capacity token lock_ttl
//   Refuses "err(locked)" if the lock is held, "err(invalid_state)" if the
//   timeline is not ready; else takes the lock (SET token EX lock_ttl) and
//   moves the timeline into the snapshot (RENAME, or ZUNIONSTORE AGGREGATE
//   MAX into an existing one, then trimmed to the capacity). Reply: flat
//   [id, value or nil, score, ...], newest first.
// DIGEST_CLOSE timeline token minimum_delay id*
//   Refuses "err(locked)" if another token holds the lock. Removes the ids
//   from the snapshot and their values, 1000 at a time; if ids were given
//   or records remain, stores the last delivery time and makes the
//   timeline wait until now + minimum_delay, else removes it from both
//   schedules and forgets its last delivery. Releases the lock.
// RELEASE timeline token
//   Deletes the lock if `token` holds it. Reply: 1 if it did.
// DELETE timeline
//   Refuses "err(locked)" while the lock is held; else removes the
//   timeline, snapshot, their values, the last delivery time and both
//   schedule entries.

namespace vigil::digests_scripts {

inline constexpr const char* digests_lua = R"lua(
local command = ARGV[1]
local ns = ARGV[2]
local ttl = ARGV[3]
local now = tonumber(ARGV[4])
math.randomseed(math.floor(now))

local waiting = ns .. ':s:w'
local ready = ns .. ':s:r'
local function timeline_key(t) return ns .. ':t:' .. t end
local function digest_key(t) return ns .. ':t:' .. t .. ':d' end
local function last_key(t) return ns .. ':t:' .. t .. ':l' end
local function record_key(t, id) return ns .. ':t:' .. t .. ':r:' .. id end
local function lock_key(t) return 'l:' .. ns .. ':t:' .. t end

-- Runs `cmd key args[from..to]` in slices of `step` (unpack has a bound).
local function sliced(cmd, key, args, step)
  local i = 1
  while i <= #args do
    local j = math.min(i + step - 1, #args)
    redis.call(cmd, key, unpack(args, i, j))
    i = j + 1
  end
end

-- DEL of many keys in slices.
local function del_all(keys)
  local i = 1
  while i <= #keys do
    local j = math.min(i + 999, #keys)
    redis.call('DEL', unpack(keys, i, j))
    i = j + 1
  end
end

-- Keeps the `capacity` newest members of zset `set` of timeline `t`,
-- deleting the values of the others.
local function trim(set, t, capacity)
  if redis.call('ZCARD', set) <= capacity then
    return 0
  end
  local gone = redis.call('ZREVRANGE', set, capacity, -1)
  local keys = {}
  for i, id in ipairs(gone) do
    keys[i] = record_key(t, id)
  end
  sliced('ZREM', set, gone, 1000)
  del_all(keys)
  return #gone
end

-- Moves members of `from` scored in [0, deadline] to `to`, keeping scores.
local function move(from, to, deadline)
  local found = redis.call('ZRANGEBYSCORE', from, 0, deadline, 'WITHSCORES')
  local i = 1
  while i <= #found do
    local j = math.min(i + 999, #found)
    local zadd, zrem = {}, {}
    for k = i, j, 2 do
      zadd[#zadd + 1] = found[k + 1]
      zadd[#zadd + 1] = found[k]
      zrem[#zrem + 1] = found[k]
    end
    redis.call('ZADD', to, unpack(zadd))
    redis.call('ZREM', from, unpack(zrem))
    i = j + 1
  end
  return found
end

local function locked(t)
  return redis.error_reply('err(locked): the digest of timeline ' .. t
                           .. ' is open elsewhere')
end

if command == 'ADD_MANY' then
  local capacity = tonumber(ARGV[5])
  local chance = tonumber(ARGV[6])
  -- The timelines of the call, first seen first.
  local order, timelines = {}, {}
  for a = 7, #ARGV, 5 do
    local t = ARGV[a]
    if timelines[t] == nil then
      timelines[t] = {members = {}}
      order[#order + 1] = t
    end
  end
  -- Their schedule state, one command per set for all of them.
  local function each_slice(list, f)
    local i = 1
    while i <= #list do
      local j = math.min(i + 999, #list)
      f(i, j)
      i = j + 1
    end
  end
  local unready = {}
  each_slice(order, function (i, j)
    local scores = redis.call('ZMSCORE', ready, unpack(order, i, j))
    for k = i, j do
      local s = timelines[order[k]]
      s.ready = scores[k - i + 1] ~= false
      if not s.ready then
        unready[#unready + 1] = order[k]
      end
    end
  end)
  local waiters = {}
  each_slice(unready, function (i, j)
    local scores = redis.call('ZMSCORE', waiting, unpack(unready, i, j))
    for k = i, j do
      local score = scores[k - i + 1]
      if score ~= false then
        timelines[unready[k]].score = tonumber(score)
        waiters[#waiters + 1] = unready[k]
      end
    end
  end)
  each_slice(waiters, function (i, j)
    local keys = {}
    for k = i, j do
      keys[#keys + 1] = last_key(waiters[k])
    end
    local lasts = redis.call('MGET', unpack(keys))
    for k = i, j do
      timelines[waiters[k]].last = tonumber(lasts[k - i + 1] or nil)
    end
  end)
  -- Each record in turn, as ADDs one by one.
  local answers = {}
  local n = 0
  for a = 7, #ARGV, 5 do
    local s = timelines[ARGV[a]]
    local m = s.members
    m[#m + 1] = ARGV[a + 2]
    m[#m + 1] = ARGV[a + 1]
    local answer = '0'
    if not s.ready then
      local ts = tonumber(ARGV[a + 2])
      if s.score == nil then
        s.ready = true
        s.ready_at = ARGV[a + 2]
        answer = '1'
      else
        local update
        if s.last == nil then
          update = math.min(s.score, ts)
        else
          update = math.min(s.score + tonumber(ARGV[a + 3]),
                            s.last + tonumber(ARGV[a + 4]))
        end
        if update ~= s.score then
          s.score = update
          s.moved = true
        end
      end
    end
    n = n + 1
    answers[n] = answer
    if capacity > 0 and math.random() < chance then
      s.truncate = true
    end
  end
  -- The writes: each timeline once, the schedules once.
  local now_ready, now_waiting = {}, {}
  for _, t in ipairs(order) do
    local s = timelines[t]
    local key = timeline_key(t)
    if #s.members <= 2000 then
      redis.call('ZADD', key, unpack(s.members))
    else
      sliced('ZADD', key, s.members, 2000)
    end
    redis.call('EXPIRE', key, ttl)
    if s.ready_at ~= nil then
      now_ready[#now_ready + 1] = s.ready_at
      now_ready[#now_ready + 1] = t
    elseif s.moved then
      now_waiting[#now_waiting + 1] = s.score
      now_waiting[#now_waiting + 1] = t
    end
    if s.truncate then
      trim(key, t, capacity)
    end
  end
  sliced('ZADD', ready, now_ready, 2000)
  sliced('ZADD', waiting, now_waiting, 2000)
  return table.concat(answers)
end

if command == 'SCHEDULE' then
  return move(waiting, ready, ARGV[5])
end

if command == 'MAINTENANCE' then
  return #move(ready, waiting, ARGV[5]) / 2
end

if command == 'DIGEST_OPEN' then
  local t, capacity = ARGV[5], tonumber(ARGV[6])
  if redis.call('EXISTS', lock_key(t)) == 1 then
    return locked(t)
  end
  if redis.call('ZSCORE', ready, t) == false then
    return redis.error_reply('err(invalid_state): timeline ' .. t
                             .. ' is not in the ready state')
  end
  redis.call('SET', lock_key(t), ARGV[7], 'EX', ARGV[8])
  local tkey, dkey = timeline_key(t), digest_key(t)
  if redis.call('EXISTS', tkey) == 1 then
    if redis.call('EXISTS', dkey) == 1 then
      redis.call('ZUNIONSTORE', dkey, 2, tkey, dkey, 'AGGREGATE', 'MAX')
      redis.call('DEL', tkey)
      if capacity > 0 then
        trim(dkey, t, capacity)
      end
    else
      redis.call('RENAME', tkey, dkey)
    end
    redis.call('EXPIRE', dkey, ttl)
  end
  local members = redis.call('ZREVRANGE', dkey, 0, -1, 'WITHSCORES')
  local out = {}
  local i = 1
  while i <= #members do
    local j = math.min(i + 1999, #members)
    local keys = {}
    for k = i, j, 2 do
      keys[#keys + 1] = record_key(t, members[k])
    end
    local values = redis.call('MGET', unpack(keys))
    for k = i, j, 2 do
      out[#out + 1] = members[k]
      out[#out + 1] = values[(k - i) / 2 + 1]
      out[#out + 1] = members[k + 1]
    end
    i = j + 1
  end
  return out
end

if command == 'DIGEST_CLOSE' then
  local t, token, delay = ARGV[5], ARGV[6], tonumber(ARGV[7])
  local holder = redis.call('GET', lock_key(t))
  if holder ~= false and holder ~= token then
    return locked(t)
  end
  local tkey, dkey = timeline_key(t), digest_key(t)
  local ids, keys = {}, {}
  for a = 8, #ARGV do
    ids[#ids + 1] = ARGV[a]
    keys[#keys + 1] = record_key(t, ARGV[a])
  end
  sliced('ZREM', dkey, ids, 1000)
  del_all(keys)
  if #ids > 0 or redis.call('ZCARD', tkey) > 0
     or redis.call('ZCARD', dkey) > 0 then
    redis.call('SET', last_key(t), ARGV[4], 'EX', ttl)
    redis.call('ZREM', ready, t)
    redis.call('ZADD', waiting, now + delay, t)
  else
    redis.call('DEL', last_key(t))
    redis.call('ZREM', ready, t)
    redis.call('ZREM', waiting, t)
  end
  if holder ~= false then
    redis.call('DEL', lock_key(t))
  end
  return 1
end

if command == 'RELEASE' then
  local t = ARGV[5]
  if redis.call('GET', lock_key(t)) == ARGV[6] then
    return redis.call('DEL', lock_key(t))
  end
  return 0
end

if command == 'DELETE' then
  local t = ARGV[5]
  if redis.call('EXISTS', lock_key(t)) == 1 then
    return locked(t)
  end
  trim(timeline_key(t), t, 0)
  trim(digest_key(t), t, 0)
  redis.call('DEL', last_key(t))
  redis.call('ZREM', ready, t)
  redis.call('ZREM', waiting, t)
  return 1
end

return redis.error_reply('err(unknown_command): ' .. tostring(command))
)lua";

} // namespace vigil::digests_scripts
