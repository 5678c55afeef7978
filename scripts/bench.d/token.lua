-- wrk script for scripts/bench: client-credentials token requests.
--   POST grant_type=client_credentials, application/x-www-form-urlencoded,
--   "Authorization: Basic $BENCH_BASIC" (base64 of the form-encoded
--   client_id:client_secret, RFC 6749 2.3.1).  wrk adds Content-Length.
-- The path comes from the URL given to wrk (/o/token/).
local basic = os.getenv("BENCH_BASIC") or ""
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. basic
