-- wrk script: a flood of logins with wrong passwords for addresses that have
-- no account (each one is still hashed, against a dummy hash). Counts the
-- answers by code; the totals are printed by done().
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  unauthenticated, busy, other = 0, 0, 0
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"query":"mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }","variables":{"e":"flood%d-%d@example.org","p":"not the password %d"}}',
    id, counter, counter)
  return wrk.format("POST", "/graphql", { ["Content-Type"] = "application/json" }, body)
end

response = function(status, headers, body)
  if string.find(body, "UNAUTHENTICATED", 1, true) then
    unauthenticated = unauthenticated + 1
  elseif string.find(body, "SERVER_BUSY", 1, true) then
    busy = busy + 1
  else
    other = other + 1
  end
end

done = function(summary, latency, requests)
  local u, b, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    u = u + thread:get("unauthenticated")
    b = b + thread:get("busy")
    o = o + thread:get("other")
  end
  io.write(string.format("answers: UNAUTHENTICATED=%d SERVER_BUSY=%d other=%d\n", u, b, o))
end
