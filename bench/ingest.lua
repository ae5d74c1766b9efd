-- ingest.lua - wrk script for bench/ingest.sh: every request is the same REST Proxy v2 produce,
-- POST with `application/vnd.kafka.json.v2+json` and {"records":[{"value":...}, ...]}.
--
-- INGEST_RECORDS      records per request (default 1)
-- INGEST_VALUE_BYTES  bytes of each stored value (default 100): a JSON string, quotes included,
--                     since the json format stores a value as its compact JSON text
--
-- Records have no key, so the producer's murmur2_random spreads them over the partitions.
-- The body is built once; wrk sends it as is, with no Lua call per request, so wrk spends
-- about the same per request here as on the GET /healthz it is compared with.

local records = tonumber(os.getenv("INGEST_RECORDS") or "1")
local value_bytes = tonumber(os.getenv("INGEST_VALUE_BYTES") or "100")
assert(records and records >= 1, "INGEST_RECORDS: expected a positive integer")
assert(value_bytes and value_bytes >= 2, "INGEST_VALUE_BYTES: expected 2 or more")

local record = '{"value":"' .. string.rep("v", value_bytes - 2) .. '"}'
local list = {}
for i = 1, records do
  list[i] = record
end

wrk.method = "POST"
wrk.body = '{"records":[' .. table.concat(list, ",") .. "]}"
wrk.headers["Content-Type"] = "application/vnd.kafka.json.v2+json"
wrk.headers["Accept"] = "application/vnd.kafka.v2+json"
