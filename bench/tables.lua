-- tables.lua - wrk script for bench/tables.sh: GET of random existing keys of a table, or the
-- same Lua request path for GET /healthz, so that both rows cost wrk the same per request.
--
-- TABLES_TABLE  the table (default "bench")
-- TABLES_KEYS   the table holds keys k0..k<TABLES_KEYS-1> (default 1000000)
-- TABLES_PATH   when set, every request is a GET of this path instead (e.g. /healthz)
--
-- Each wrk thread draws its keys from a generator seeded by the thread's own number, so the
-- threads do not ask for the same sequence. A request is built per call (wrk.format), so
-- wrk spends about the same per request on /healthz as on a key.

local table_name = os.getenv("TABLES_TABLE") or "bench"
local keys = tonumber(os.getenv("TABLES_KEYS") or "1000000")
local fixed_path = os.getenv("TABLES_PATH")
if fixed_path == "" then
  fixed_path = nil
end
assert(keys and keys >= 1, "TABLES_KEYS: expected a positive integer")

local counter = 0
local prefix = "/tables/" .. table_name .. "/keys/k"

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(seed or 1)
end

if fixed_path then
  request = function()
    return wrk.format("GET", fixed_path)
  end
else
  request = function()
    return wrk.format("GET", prefix .. math.random(0, keys - 1))
  end
end
