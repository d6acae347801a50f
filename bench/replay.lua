-- wrk script: replay one pre-signed request (SigV4 allows replay inside its 15-minute window).
--   BENCH_REQUEST  a Lua file returning {method=, path=, headers={...}, body=}
--   BENCH_RATE     optional: requests per second for this wrk thread (paced, open loop)
--   BENCH_LOG      optional: append "<unix time of the answer> <status> <InferenceId>" per answer
-- done() prints one line "BENCH_JSON {...}" with counts and latency percentiles (microseconds).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME: comparable with time.time() in other processes
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local spec = dofile(os.getenv("BENCH_REQUEST"))
wrk.method = spec.method
wrk.path = spec.path
wrk.body = spec.body
for name, value in pairs(spec.headers) do
  wrk.headers[name] = value
end

local rate = tonumber(os.getenv("BENCH_RATE") or "")
if rate then
  local interval, next_at = 1 / rate, nil
  -- one schedule per thread: each call takes the next slot, so the thread sends `rate` per second
  function delay()
    local t = now()
    if next_at == nil or next_at < t - 1 then
      next_at = t
    end
    next_at = next_at + interval
    local wait = (next_at - t) * 1000
    return wait > 0 and math.floor(wait + 0.5) or 0
  end
end

local log_path = os.getenv("BENCH_LOG")
if log_path then
  local log = nil
  function response(status, headers, body)
    local t = now()
    if log == nil then
      log = io.open(log_path, "a")
      log:setvbuf("full")
    end
    local id = body and body:match('"InferenceId"%s*:%s*"([^"]+)"') or "-"
    log:write(string.format("%.6f %d %s\n", t, status, id))
  end
end

local QUANTILES = {1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97.5, 99, 99.5, 99.9, 99.99, 100}

function done(summary, latency, requests)
  local cdf = {}
  for _, q in ipairs(QUANTILES) do
    table.insert(cdf, string.format("[%g, %d]", q, latency:percentile(q)))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}, "mean_us": %f, "percentiles_us": [%s]}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, table.concat(cdf, ", ")))
end
