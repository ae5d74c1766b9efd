-- partitioned_keys.lua - wrk script for bench/partitioned.sh: GET of paths drawn at random
-- from a file, one path per line (PATHS_FILE), so that a row reads only keys this instance
-- holds, or only keys it forwards. Each wrk thread seeds its generator with its own number.

local file = assert(os.getenv("PATHS_FILE"), "PATHS_FILE: the file of paths to GET")
local paths = {}
for line in io.lines(file) do
  paths[#paths + 1] = line
end
assert(#paths > 0, "PATHS_FILE: no paths in " .. file)

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(seed or 1)
end

request = function()
  return wrk.format("GET", paths[math.random(1, #paths)])
end
