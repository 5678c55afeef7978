-- wrk script for scripts/bench: every request carries
-- "Authorization: Bearer $BENCH_TOKEN" (the token comes from the
-- environment; scripts/bench checks that it is set and valid first).
local token = os.getenv("BENCH_TOKEN") or ""
wrk.headers["Authorization"] = "Bearer " .. token
