-- wrk script: GET a list of URL paths in turn (one path per line in the file given
-- after `--`), each thread starting at its own offset so threads do not move in step.
-- At the end it prints one line "JSON {...}" with the exact totals and percentiles.
--
--   wrk -t2 -c64 -d10s --latency -s bench/segments.lua http://127.0.0.1:PORT -- urls.txt

local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
end

local paths = {}
local counter = 0

function init(args)
   local f = assert(io.open(args[1], "r"), "cannot open the URL list " .. tostring(args[1]))
   for line in f:lines() do
      if #line > 0 then
         paths[#paths + 1] = wrk.format("GET", line)  -- formatted once, not per request
      end
   end
   f:close()
   assert(#paths > 0, "the URL list is empty")
   counter = math.floor(#paths * (id or 0) / 2)
end

function request()
   counter = counter % #paths + 1
   return paths[counter]
end

-- No response() callback: it would make wrk parse every response into Lua and slow
-- the client down. wrk counts statuses >= 400 in summary.errors.status itself.

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'JSON {"requests": %d, "bytes": %d, "duration_us": %d, "connect": %d, "read": %d, '
         .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, '
         .. '"p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean))
end
