-- wrk script for benchmarks/service_load.py: POST one inference request body, over and over.
-- GRAPHKIT_BODY names the body file; GRAPHKIT_HEADER_LENGTH, when set, is the binary tensor
-- extension's Inference-Header-Content-Length (the JSON header's size in the body).
-- At the end, one JSON line on stdout: requests, non-2xx answers, socket errors, latencies.

wrk.method = "POST"
local file = assert(io.open(os.getenv("GRAPHKIT_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
local header_length = os.getenv("GRAPHKIT_HEADER_LENGTH")
if header_length ~= nil and header_length ~= "" then
  wrk.headers["Content-Type"] = "application/octet-stream"
  wrk.headers["Inference-Header-Content-Length"] = header_length
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration / 1e6, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
