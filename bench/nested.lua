-- wrk script: one GraphQL POST over and over, the body read from
-- BENCH_BODY (a JSON request), with BENCH_TOKEN as a bearer token and
-- BENCH_ENCODING, when set, as Accept-Encoding. No response callback, so
-- that wrk does not copy each (large) body into Lua: the script checks the
-- answers with curl before and after instead.
function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  local token = os.getenv("BENCH_TOKEN")
  if token and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  local encoding = os.getenv("BENCH_ENCODING")
  if encoding and encoding ~= "" then
    headers["Accept-Encoding"] = encoding
  end
  prepared = wrk.format("POST", "/graphql", headers, os.getenv("BENCH_BODY"))
end

request = function()
  return prepared
end
