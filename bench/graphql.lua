-- wrk script for GraphQL POSTs: each request is drawn at random from a prepared file.
--
-- BENCH_REQUESTS names a file with one request per line: "<Authorization header value or empty>\t<JSON body>".
-- Responses whose body holds a top-level "errors" key (GraphQL errors come with HTTP 200) are counted and
-- reported by done() as "graphql_errors: N"; bench/run.py fails the run if there are any.
-- BENCH_MEAN_WAIT_MS, if set, paces each connection: it waits a random time with this mean (exponentially
-- distributed, so arrivals are roughly Poisson) before each request. wrk times a request from when it is sent.
-- BENCH_SEQ_TAG, if set (4 characters), makes every request unique (writes: a receipt id per purchase): the first
-- "@@@@@@@@@@@@@@" (14 characters) of a request becomes the tag, the thread's number (2 digits) and a counter
-- (8 digits), the same length, so Content-Length stays right. A response whose "userErrors" list is not empty is
-- counted as a GraphQL error too (a mutation's refusals come as data).

local requests = {}
local graphql_errors = 0
local threads = {}
local mean_wait_ms = tonumber(os.getenv("BENCH_MEAN_WAIT_MS") or "")
local seq_tag = os.getenv("BENCH_SEQ_TAG")
local SEQ_PLACEHOLDER = "@@@@@@@@@@@@@@"
local counter = 0

local function load(path)
  local file = assert(io.open(path, "r"), "cannot open BENCH_REQUESTS file " .. tostring(path))
  for line in file:lines() do
    local tab = string.find(line, "\t", 1, true)
    if tab then
      local auth = string.sub(line, 1, tab - 1)
      local body = string.sub(line, tab + 1)
      local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
      if auth ~= "" then
        headers["Authorization"] = auth
      end
      requests[#requests + 1] = wrk.format("POST", wrk.path, headers, body)
    end
  end
  file:close()
  assert(#requests > 0, "no requests in " .. path)
end

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  load(os.getenv("BENCH_REQUESTS"))
  math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
  local req = requests[math.random(#requests)]
  if seq_tag then
    counter = counter + 1
    local unique = seq_tag .. string.format("%02d%08d", id or 0, counter)
    local at = string.find(req, SEQ_PLACEHOLDER, 1, true)
    if at then
      req = string.sub(req, 1, at - 1) .. unique .. string.sub(req, at + #SEQ_PLACEHOLDER)
    end
  end
  return req
end

if mean_wait_ms then
  function delay()
    return math.floor(-mean_wait_ms * math.log(1 - math.random()))
  end
end

function response(status, headers, body)
  if body and (string.find(body, '"errors"', 1, true) or string.find(body, '"userErrors":[{', 1, true)) then
    graphql_errors = graphql_errors + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("graphql_errors") or 0)
  end
  io.write(string.format("graphql_errors: %d\n", total))
end
