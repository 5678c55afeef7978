-- wrk script for scripts/bench-scale: each request carries a bearer token
-- picked at random from the file $BENCH_TOKENS (one token a line), so the
-- lookups spread over the store as real clients' would.
local tokens = {}

function init(args)
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    tokens[#tokens + 1] = line
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

function request()
  local t = tokens[math.random(#tokens)]
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. t })
end
