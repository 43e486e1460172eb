-- wrk script of bench/control_plane.py:  wrk -s bench/control_plane.lua <url> -- <spec.lua>
--
-- The spec file (written by control_plane.py) returns
--   {tag = "run tag", ops = {{weight = 1, unique = false,
--                             variants = {{method =, path =, headers = {..}, body =}, ..}}, ..}}
-- Each request picks an op by weight, then one of its variants at random (a pool of ids,
-- keys or cursors). In a `unique` op, `{u}` in the path or body becomes a token no other
-- request of the run uses (names of created resources). Fixed variants are formatted once.
-- done() prints one line: CONTROL_PLANE_RESULT <json>, with every response status counted.

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local ops, total_weight, tag
local counter = 0
statuses = {}

function init(args)
  local spec = dofile(args[1])
  tag = spec.tag .. "-" .. thread_id
  ops, total_weight = {}, 0
  for _, op in ipairs(spec.ops) do
    local entry = {unique = op.unique, variants = op.variants, ready = {}}
    if not op.unique then
      for i, v in ipairs(op.variants) do
        entry.ready[i] = wrk.format(v.method, v.path, v.headers, v.body)
      end
    end
    total_weight = total_weight + op.weight
    entry.upto = total_weight
    table.insert(ops, entry)
  end
  math.randomseed(os.time() + 7919 * thread_id)
end

local function pick()
  if #ops == 1 then
    return ops[1]
  end
  local r = math.random() * total_weight
  for _, op in ipairs(ops) do
    if r < op.upto then
      return op
    end
  end
  return ops[#ops]
end

function request()
  local op = pick()
  local i = math.random(#op.variants)
  if not op.unique then
    return op.ready[i]
  end
  counter = counter + 1
  local u = tag .. "-" .. counter
  local v = op.variants[i]
  local body = v.body and (v.body:gsub("{u}", u)) or nil
  return wrk.format(v.method, (v.path:gsub("{u}", u)), v.headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local codes = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses") or {}) do
      codes[code] = (codes[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(codes) do
    parts[#parts + 1] = string.format('"%d": %d', code, n)
  end
  local e = summary.errors
  io.write(string.format(
    'CONTROL_PLANE_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, "p99": %d, ' ..
    '"p999": %d, "max": %d}, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, table.concat(parts, ", ")))
end
