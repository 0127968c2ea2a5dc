-- wrk script for Glue's bench: one scenario per run, every request new.
--
--   wrk -t T -c C -d D -s bench/lua/glue.lua http://127.0.0.1:PORT -- \
--       scenario=verify ikey=IFBYPHONE_SECRET dkey=DIDML_SECRET users=1000 tag=r1 \
--       threads=T [rate=500 [switch_s=10 rate2=250]] [calls=40000]
--
-- scenario  verify  IfbyPhone: a new call (unique session_id) posting account + PIN
--                   of a random user of the directory (the right PIN)
--           gather  didML: the answer to the account <Gather> of a prepared call
--                   (calls TAG-0 .. TAG-(calls-1), one per request)
--           status  DIDforSale status callback: a new CallSid per request, statuses rotating
-- rate      total requests/s to pace at (0: as fast as the server answers). Paced runs
--           use one connection per thread and measure latency from the moment each
--           request was due (so a server that falls behind is not excused: no
--           coordinated omission), and wrk's own latency from when it was sent.
-- rate2     from switch_s seconds into the run on, the paced rate is rate2.
--
-- done() prints one line `BENCH_JSON {...}` that bench/load.py reads. With
-- BENCH_TIMINGS=PATH in the environment, a paced run also writes every request
-- there, one line each: the thread, the seconds into its schedule the request
-- was due, its latency from then in microseconds, and its HTTP status; latency
-- -1 for a request sent and not answered by the end of the run, -2 for one due
-- and never sent (the thread was still waiting for an earlier answer).

local ffi = require("ffi")
ffi.cdef [[
struct bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk_id, struct bench_timespec *tp);
]]
local ts = ffi.new("struct bench_timespec")
local function clock_us(clock)
  ffi.C.clock_gettime(clock, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end
local function now_us()
  return clock_us(1) -- CLOCK_MONOTONIC
end

-- Must match bench/common.py.
local ACCOUNT_BASE, PIN_MULTIPLIER, PIN_OFFSET = 10000000, 7919, 1234
local STATUSES = { "initiated", "ringing", "answered", "completed", "busy", "no-answer" }

-- main-thread state -------------------------------------------------------------------
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- per-thread state ----------------------------------------------------------------------
local opts = {}
local counter = 0
local nthreads = 1
local pending_slot, intended, sent = nil, nil, nil
local wall_offset_us = 0 -- CLOCK_REALTIME less CLOCK_MONOTONIC, set in init()
-- Read by done() (globals, so that thread:get reaches them); paced runs only.
schedule = {}     -- t0 (the first slot), interval_us, switch_us, interval2_us, end_us
next_slot = nil   -- the slot of the latest request taken
in_flight = nil   -- the slot of the request sent and not yet answered
due = {}          -- when each answered request was due (us after t0)
lat = {}          -- its latency from then (us)
service = {}      -- its latency from when it was sent (us)
status = {}       -- its HTTP status

local function pin_of(i)
  return string.format("%04d", (i * PIN_MULTIPLIER + PIN_OFFSET) % 10000)
end

-- A valid caller number, new for each request of a run (per-caller rate limits
-- count a caller's calls; each request here is a different caller's).
local caller_seed = 0
local function caller()
  caller_seed = (caller_seed + 7) % 7000000
  return string.format("312%07d", 3000000 + caller_seed)
end

function init(args)
  for _, arg in ipairs(args) do
    local k, v = string.match(arg, "^([%w_]+)=(.*)$")
    if k then opts[k] = v end
  end
  opts.users = tonumber(opts.users or "1000")
  opts.calls = tonumber(opts.calls or "0")
  opts.rate = tonumber(opts.rate or "0")
  nthreads = tonumber(opts.threads or "1")
  math.randomseed(1000 + tid * 7919 + #(opts.tag or ""))
  caller_seed = (tid * 1000003 + math.random(0, 999999)) % 7000000
  if opts.rate > 0 then
    local rate2 = tonumber(opts.rate2 or "0")
    schedule = {
      interval_us = 1e6 * nthreads / opts.rate,
      switch_us = rate2 > 0 and tonumber(opts.switch_s) * 1e6 or math.huge,
      interval2_us = rate2 > 0 and 1e6 * nthreads / rate2 or 0,
      end_us = tonumber(opts.duration_s or "0") * 1e6,
    }
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wall_offset_us = clock_us(0) - now_us()
end

local function body_and_path()
  counter = counter + 1
  local s = opts.scenario
  if s == nil then
    -- wrk calls request() once in its main Lua state, where init() never ran,
    -- to check that the request parses: any well-formed request will do.
    return "/", ""
  elseif s == "verify" then
    local i = math.random(0, opts.users - 1)
    local path = "/ifbyphone/verify_caller?key=" .. opts.ikey
    local body = "session_id=" .. opts.tag .. "-" .. tid .. "-" .. counter
      .. "&caller_id=" .. caller()
      .. "&timestamp=2026-11-21+14%3A00%3A00"
      .. "&account=" .. (ACCOUNT_BASE + i)
      .. "&pin=" .. pin_of(i)
    return path, body
  elseif s == "gather" then
    -- Threads take interleaved calls: thread t gets t, t+T, t+2T, ...
    local k = (tid + nthreads * (counter - 1)) % math.max(opts.calls, 1)
    local i = math.random(0, opts.users - 1)
    local path = "/didml/verify_caller?key=" .. opts.dkey .. "&turn=1&question=account"
    local body = "callSid=" .. opts.tag .. "-" .. k
      .. "&From=%2B1" .. caller()
      .. "&To=%2B18005551212&CallStatus=in-progress&Direction=inbound"
      .. "&Digits=" .. (ACCOUNT_BASE + i)
    return path, body
  elseif s == "status" then
    local path = "/didml/status?key=" .. opts.dkey
    local body = "callSid=" .. opts.tag .. "-" .. tid .. "-" .. counter
      .. "&CallStatus=" .. STATUSES[(counter % #STATUSES) + 1]
      .. "&Called=%2B13125550101&Direction=Outbound&CallbackSource=call-progress-event"
      .. "&CallDuration=" .. (counter % 300)
    return path, body
  else
    error("unknown scenario " .. tostring(s))
  end
end

function request()
  if opts.rate > 0 then
    sent = now_us()
    intended, pending_slot = pending_slot or sent, nil
    in_flight = intended
    -- When the platform sent it, as a proxy stamps a request's arrival (nginx's
    -- t=${msec}): Glue sheds what waited past its budget when it trusts this.
    wrk.headers["X-Request-Start"] =
      string.format("t=%.3f", (intended + wall_offset_us) / 1e6)
  end
  local path, body = body_and_path()
  return wrk.format(nil, path, nil, body)
end

-- The slot after `slot` in a thread's schedule (main state too: done() walks it).
local function slot_after(s, slot)
  if slot - s.t0 < s.switch_us then
    return slot + s.interval_us
  end
  return slot + s.interval2_us
end

-- delay() and response() are defined for paced runs only: wrk then parses every
-- response for the script, which a run at full speed should not pay for.
local function paced_delay()
  -- Called before every request of a paced run (the first one too): each takes
  -- the thread's next slot, whether or not the server has kept up.
  local now = now_us()
  if next_slot == nil then
    schedule.t0 = now
    next_slot = now
  else
    next_slot = slot_after(schedule, next_slot)
  end
  pending_slot = next_slot
  local ms = (next_slot - now) / 1000
  if ms < 0 then ms = 0 end
  return ms
end

local function paced_response(code, headers, body)
  local now = now_us()
  if intended ~= nil then
    local from = math.min(intended, sent)
    due[#due + 1] = from - schedule.t0
    lat[#lat + 1] = now - from
    service[#service + 1] = now - sent
    status[#status + 1] = code
    in_flight = nil
  end
end

-- wrk looks these up by name once the script is loaded; args are not known yet,
-- so the choice is made from the environment of the wrk process.
if os.getenv("BENCH_PACED") == "1" then
  delay = paced_delay
  response = paced_response
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  local k = math.max(1, math.ceil(#sorted * p / 100))
  return sorted[k]
end

local function write_timings(path)
  local out = assert(io.open(path, "w"))
  for _, t in ipairs(threads) do
    local tid, s = t:get("tid"), t:get("schedule")
    local due, lat, status = t:get("due") or {}, t:get("lat") or {}, t:get("status") or {}
    for i = 1, #due do
      out:write(string.format("%d %.6f %d %d\n", tid, due[i] / 1e6, lat[i], status[i]))
    end
    local slot, waiting = t:get("next_slot"), t:get("in_flight")
    if s and s.t0 and slot then
      if waiting then
        out:write(string.format("%d %.6f -1 0\n", tid, (waiting - s.t0) / 1e6))
      end
      -- The slots the thread never reached: due before the run ended, never sent.
      slot = slot_after(s, slot)
      while slot - s.t0 < s.end_us do
        out:write(string.format("%d %.6f -2 0\n", tid, (slot - s.t0) / 1e6))
        slot = slot_after(s, slot)
      end
    end
  end
  out:close()
end

function done(summary, latency, requests)
  local e = summary.errors
  local fields = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"p50_us":%d', latency:percentile(50)),
    string.format('"p90_us":%d', latency:percentile(90)),
    string.format('"p99_us":%d', latency:percentile(99)),
    string.format('"mean_us":%.1f', latency.mean),
    string.format('"max_us":%d', latency.max),
  }
  if os.getenv("BENCH_PACED") == "1" then
    local all, svc = {}, {}
    for _, t in ipairs(threads) do
      for _, v in ipairs(t:get("lat") or {}) do all[#all + 1] = v end
      for _, v in ipairs(t:get("service") or {}) do svc[#svc + 1] = v end
    end
    table.sort(all)
    table.sort(svc)
    table.insert(fields, string.format(
      '"paced":{"count":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
        .. '"service_p50_us":%d,"service_p99_us":%d}',
      #all, percentile(all, 50), percentile(all, 90), percentile(all, 99),
      all[#all] or 0, percentile(svc, 50), percentile(svc, 99)))
  end
  io.write("BENCH_JSON {" .. table.concat(fields, ",") .. "}\n")
  local path = os.getenv("BENCH_TIMINGS")
  if path and os.getenv("BENCH_PACED") == "1" then
    write_timings(path)
  end
end
