-- wrk script of `vigil bench ingest`: POSTs one Sentry event to a store
-- endpoint with keep-alive, a new event_id in every request, and prints the
-- figures as one JSON line (prefixed WRKJSON) when done.
--
--   wrk -t1 -c N -d S -s bench/ingest_post.lua URL -- EVENT_FILE KEY RUN
--
-- EVENT_FILE: the event JSON; its "event_id" value (32 hex digits) is
-- replaced in every request. KEY: the DSN public key. RUN: a number that
-- makes this run's ids differ from other runs' (the node keeps a retried
-- event_id once, so repeating ids would measure the retry path).
-- The same script drives nginx, so both servers see identical requests.

local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end

local prefix, suffix
local counter = 0
local run = 0

function init(args)
  local path, key = args[1], args[2]
  run = tonumber(args[3] or "0") or 0
  local f = assert(io.open(path, "rb"))
  local body = f:read("*a")
  f:close()
  -- A placeholder of the id's length, so that Content-Length stays right.
  local marker = string.rep("Z", 32)
  local at, stop = body:find('"event_id"%s*:%s*"%x+"')
  if at then
    local value_at = body:find('"%x+"', at + 10)
    body = body:sub(1, value_at) .. marker .. body:sub(stop)
  else
    body = '{"event_id":"' .. marker .. '",' .. body:sub(body:find("{") + 1)
  end
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Sentry-Auth"] = "Sentry sentry_version=7, sentry_key=" .. key
      .. ", sentry_client=sentry.python/1.9.10",
    ["User-Agent"] = "sentry.python/1.9.10",
  }
  local req = wrk.format("POST", nil, headers, body)
  local m = req:find(marker, 1, true)
  prefix = req:sub(1, m - 1)
  suffix = req:sub(m + #marker)
end

function request()
  counter = counter + 1
  return prefix .. string.format("%08x%08x%08x%08x", run, tid or 0, 0,
                                 counter) .. suffix
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors_connect":%d,"errors_read":%d,"errors_write":%d,'
      .. '"errors_status":%d,"errors_timeout":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
