-- wrk script: one GraphQL request over and over. BENCH_QUERY is the
-- document; BENCH_TOKEN, when set, is sent as a bearer token. Counts the
-- answers with and without `errors`; done() prints the totals.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, failed = 0, 0
  local query = os.getenv("BENCH_QUERY"):gsub('"', '\\"')
  local headers = { ["Content-Type"] = "application/json" }
  local token = os.getenv("BENCH_TOKEN")
  if token and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  prepared = wrk.format("POST", "/graphql", headers, '{"query":"' .. query .. '"}')
end

request = function()
  return prepared
end

response = function(status, headers, body)
  if status == 200 and not string.find(body, '"errors"', 1, true) then
    ok = ok + 1
  else
    failed = failed + 1
  end
end

done = function(summary, latency, requests)
  local o, f = 0, 0
  for _, thread in ipairs(threads) do
    o = o + thread:get("ok")
    f = f + thread:get("failed")
  end
  io.write(string.format("answers: ok=%d with errors=%d\n", o, f))
end
