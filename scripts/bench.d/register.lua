-- wrk script for scripts/bench: a flood of seed 001 registrations, each a
-- new username (so each costs a PBKDF2 hash), as issue 9's attacker sent.
-- The path comes from the URL given to wrk (/users/register/).
local n = 0
local tag

init = function(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  tag = tostring(math.random(1, 1000000000))
end

request = function()
  n = n + 1
  local name = "flood" .. tag .. "x" .. n
  -- unlike the username, so that the password policy passes it on to
  -- the hash
  local pw = "Lantern-Harbor-Quill-" .. n
  local body = "username=" .. name .. "&password=" .. pw ..
               "&confirm_password=" .. pw
  return wrk.format("POST", nil,
                    {["Content-Type"] = "application/x-www-form-urlencoded"},
                    body)
end
