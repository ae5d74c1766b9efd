"""Tables: a topic materialized into LMDB and read over HTTP (docs/tables.md).

Records are written with python3-confluent-kafka using the Java client's murmur2 partitioner
(`murmur2_random`), read back with GET /tables/{table}/keys/{key}, and compared with what was
written last for each key. Restarts, kill -9 and a recreated topic check that the store stays
equal to a replay of the topic up to its stored offsets.
"""
import base64
import http.client
import random
import re
import signal
import threading
from urllib.parse import quote

import pytest

from ferrytest import Kafka, deep_merge, etag, produce, unique, wait_until


def table(name, topic, path, **over):
    return deep_merge({"name": name, "topic": topic, "path": str(path)}, over)


def config(bootstrap, tables, **over):
    base = {
        "kafka": {"brokers": bootstrap},
        "server": {"listen": "127.0.0.1:0", "shutdown_timeout": "30s"},
        "tables": tables,
    }
    return deep_merge(base, over)


class Reader:
    """GETs over one keep-alive connection (10k reads one connection each would be slow)."""

    def __init__(self, ferry):
        host, port = ferry.listen.split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def get(self, path, headers=None):
        self.conn.request("GET", path, headers=headers or {})
        r = self.conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()

    def key(self, table_name, key, headers=None):
        return self.get(f"/tables/{table_name}/keys/{quote(key, safe='')}", headers)

    def close(self):
        self.conn.close()


def metric(ferry, name, **labels):
    s = ferry.metrics().find(name, **labels)
    return s[0].value if s else None


def applied(ferry, name):
    return metric(ferry, "ferry_table_records_applied_total", table=name) or 0


@pytest.fixture
def broker30(start_dev_broker):
    """A broker of this test's own with a 30-partition topic."""
    topic = unique("prices")
    b = start_dev_broker("--topic", f"{topic}:30")
    return b, topic


def test_latest_value_per_key(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    rnd = random.Random(7)
    keys = [f"SYM{i:05d}" for i in range(10000)]
    records, last = [], {}
    for k in keys:
        records.append((k, f'{{"price":{rnd.randint(1, 999)}}}'))
    for k in rnd.sample(keys, 3000):  # overwrites
        records.append((k, f'{{"price":{rnd.randint(1000, 1999)}}}'))
    for k in rnd.sample(keys, 1000):  # tombstones
        records.append((k, None))
    for k, v in records:
        last[k] = v
    produce(broker.bootstrap, topic, records, partitioner="murmur2_random")

    f = run_ferry(config(broker.bootstrap, [table("prices", topic, tmp_path / "store")]))
    f.wait_ready(60)
    reader = Reader(f)
    try:
        for k in keys:
            status, headers, body = reader.key("prices", k)
            if last[k] is None:
                assert status == 404, (k, status, body)
            else:
                assert status == 200, (k, status, body)
                assert body.decode() == last[k]
                assert headers["content-type"] == "application/json"
        # a deleted key comes back when written again, and goes again with a tombstone
        gone = next(k for k in keys if last[k] is None)
        produce(broker.bootstrap, topic, [(gone, "back")], partitioner="murmur2_random")
        wait_until(lambda: reader.key("prices", gone)[0] == 200, 30, "the key to come back")
        assert reader.key("prices", gone)[2] == b"back"
        produce(broker.bootstrap, topic, [(gone, None)], partitioner="murmur2_random")
        wait_until(lambda: reader.key("prices", gone)[0] == 404, 30, "the key to go again")
    finally:
        reader.close()
    # counted just after the commit a read sees: each record once, tombstones included
    wait_until(lambda: applied(f, "prices") >= len(records) + 2, 10, "the applied count")
    assert applied(f, "prices") == len(records) + 2
    assert metric(f, "ferry_table_records_deleted_total", table="prices") == 1001


def test_headers_etag_and_304(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    [msg] = produce(broker.bootstrap, topic,
                    [{"key": "AAPL", "value": "raw bytes", "timestamp": 1700000000000}],
                    partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    reader = Reader(f)
    try:
        status, h, body = reader.key("t", "AAPL")
        assert status == 200 and body == b"raw bytes"
        assert h["etag"] == etag(msg.partition(), msg.offset(), b"raw bytes")
        assert h["ferry-partition"] == str(msg.partition())
        assert h["ferry-offset"] == str(msg.offset())
        assert h["ferry-lag"] == "0"
        assert h["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
        assert h["content-type"] == "application/octet-stream"
        assert reader.key("t", "AAPL", {"If-None-Match": h["etag"]})[0] == 304
        assert reader.key("t", "AAPL", {"If-None-Match": f'"x", W/{h["etag"]}'})[0] == 304
        assert reader.key("t", "AAPL", {"If-None-Match": '"0:999999"'})[0] == 200
        # the tag of before the hash, and a hash of another value at the same place
        assert reader.key("t", "AAPL", {"If-None-Match": f'"{msg.partition()}:{msg.offset()}"'}
                          )[0] == 200
        other = etag(msg.partition(), msg.offset(), b"other bytes")
        assert reader.key("t", "AAPL", {"If-None-Match": other})[0] == 200
        assert reader.key("t", "AAPL", {"If-None-Match": "*"})[0] == 304
        # a key that is not there: 404 with the partition it would be in
        status, h, body = reader.key("t", "MSFT")
        assert status == 404 and "no such key" in body.decode()
        assert 0 <= int(h["ferry-partition"]) < 30
    finally:
        reader.close()


def test_content_type_header_and_setting(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    produce(broker.bootstrap, topic,
            [{"key": "a", "value": "<p>hi</p>", "headers": [("content-type", b"text/html")]},
             {"key": "b", "value": "plain"}], partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap,
                         [table("t", topic, tmp_path / "s", content_type="text/plain")]))
    f.wait_ready(60)
    assert f.get("/tables/t/keys/a").headers["content-type"] == "text/html"
    assert f.get("/tables/t/keys/b").headers["content-type"] == "text/plain"


def test_binary_and_long_keys(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    binary = b"\x00\xffkey\x01"
    long_a = "L" * 2000 + "a"
    long_b = "L" * 2000 + "b"
    produce(broker.bootstrap, topic, [(binary, "bin"), (long_a, "A"), (long_b, "B")],
            partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    b64 = base64.urlsafe_b64encode(binary).decode().rstrip("=")
    r = f.get(f"/tables/t/keys/{b64}?key_format=base64")
    assert r.status == 200 and r.body == b"bin"
    r = f.get("/tables/t/keys/" + base64.b64encode(binary).decode() + "?key_format=base64")
    assert r.status == 200 and r.body == b"bin"
    assert f.get(f"/tables/t/keys/{long_a}").body == b"A"
    assert f.get(f"/tables/t/keys/{long_b}").body == b"B"
    assert f.get("/tables/t/keys/" + "L" * 2000 + "c").status == 404
    # a prefix sent as it is, with a NUL (%00) inside: the NUL is part of it, not its end
    for prefix, n in (("%00%FFkey", 1), ("%00%FFkez", 0), ("%00x", 0), ("%00", 1)):
        r = f.get(f"/tables/t/keys?prefix={prefix}")
        assert r.status == 200 and len(r.json()["rows"]) == n, (prefix, r.text)


def test_base64_keys_in_either_alphabet(broker30, run_ferry, tmp_path):
    """docs/tables.md: with key_format=base64 a key, a lookup's keys and a scan's prefix may be
    in the standard alphabet or the URL-safe one, padded or not, but not both in one. Standard
    keys with '+' or '/' once read as other bytes: the URL-safe try damaged them before the
    standard one read them."""
    import json
    broker, topic = broker30
    key = b"hi>\xfb\xff\xbf?\xff"  # aGk++/+/P/8= and aGk--_-_P_8=: '+' after bytes decoded
    std, url = base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode()
    assert "+" in std and "/" in std and "-" in url and "_" in url and std.endswith("=")
    spellings = [std, std.rstrip("="), url, url.rstrip("=")]
    produce(broker.bootstrap, topic, [(key, "7"), (b"hi>\xfb\xff\xbe", "8"), ("hi>", "9")],
            partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    for b64 in spellings:
        r = f.get(f"/tables/t/keys/{quote(b64, safe='')}?key_format=base64")
        assert (r.status, r.body) == (200, b"7"), (b64, r.status, r.text)
    for b64 in ("aGk+", "aGk-"):  # the review's example: "hi>"
        r = f.get(f"/tables/t/keys/{quote(b64, safe='')}?key_format=base64")
        assert (r.status, r.body) == (200, b"9"), (b64, r.status, r.text)
    r = f.request("POST", "/tables/t/lookup?key_format=base64",
                  body=json.dumps({"keys": spellings}))
    assert r.status == 200, r.text
    for res in r.json()["results"]:
        assert res.get("error_code") is None and res["value"] == 7, res
        assert base64.b64decode(res["key"]) == key
    prefix = key[:6]  # aGk++/+/ and aGk--_-_
    for b64 in (base64.b64encode(prefix).decode(), base64.urlsafe_b64encode(prefix).decode()):
        r = f.get(f"/tables/t/keys?prefix={quote(b64, safe='')}&key_format=base64")
        assert r.status == 200, (b64, r.text)
        assert [base64.b64decode(row["key"]) for row in r.json()["rows"]] == [key], (b64, r.text)
    mixed = "aGk+-_+/P/8="
    r = f.get(f"/tables/t/keys/{quote(mixed, safe='')}?key_format=base64")
    assert r.status == 400 and "key: not base64" in r.text, r.text
    r = f.request("POST", "/tables/t/lookup?key_format=base64", body=json.dumps({"keys": [mixed]}))
    assert r.status == 400 and "a key is not base64" in r.text, r.text
    r = f.get(f"/tables/t/keys?prefix={quote(mixed[:8], safe='')}&key_format=base64")
    assert r.status == 400 and "prefix: not base64" in r.text, r.text


def test_bad_requests(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    f = run_ferry(config(broker.bootstrap, [
        table("t", topic, tmp_path / "s", limits={"max_key": "16B"})]))
    f.wait_ready(60)
    cases = [
        ("/tables/nope/keys/a", 404, "no table named 'nope'"),
        ("/tables/t/keys/a?color=red", 400, "unknown query parameter 'color'"),
        ("/tables/t/keys/a?key_format=hex", 400, "key_format: expected raw or base64"),
        ("/tables/t/keys/!!!?key_format=base64", 400, "key: not base64"),
        ("/tables/t/keys?prefix=!!&key_format=base64", 400, "prefix: not base64"),
        ("/tables/t/keys?prefix=YQ&key_format=base64&after=!!", 400, "after: not base64"),
        ("/tables/t/keys?limit=0", 400, "limit: expected 1 to"),
        ("/tables/t/keys/" + "k" * 17, 400, "longer than limits.max_key (16)"),
        ("/tables/t/elsewhere", 404, "no such path"),
        # repeated, valueless or NUL-holding parameters are refused, not read half
        ("/tables/t/keys/a?key_format=raw&key_format=base64", 400,
         "query parameter 'key_format' is given more than once"),
        ("/tables/t/keys?prefix=a&prefix=b", 400, "'prefix' is given more than once"),
        ("/tables/t/keys?limit=1&limit=2", 400, "'limit' is given more than once"),
        ("/tables/t/keys/a?min_offset", 400, "query parameter 'min_offset' needs a value"),
        ("/tables/t/keys?limit", 400, "query parameter 'limit' needs a value"),
        ("/tables/t/keys?limit=5%00x", 400, "query parameter 'limit' holds a NUL byte"),
        ("/tables/t/keys/a?key_format=base64%00", 400, "'key_format' holds a NUL byte"),
        ("/tables/t?color=red", 400, "unknown query parameter 'color'"),
        ("/tables?color=red", 400, "unknown query parameter 'color'"),
    ]
    r = f.request("POST", "/tables/t/lookup?key_format=raw&key_format=raw", body=b'{"keys":[]}')
    assert r.status == 400 and "'key_format' is given more than once" in r.text, r.text
    # min_offset alone may repeat
    assert f.get("/tables/t/keys/a?min_offset=0:0&min_offset=1:0",
                 headers={"Prefer": "wait=0"}).status == 504
    # A path the other method serves is a 405, as everywhere else; a path neither serves, 404.
    cases += [
        ("POST /tables/t", 405, "method POST is not allowed on /tables/t (allowed: GET, HEAD)"),
        ("POST /tables/t/keys", 405, "(allowed: GET, HEAD)"),
        ("POST /tables/t/keys/a", 405, "(allowed: GET, HEAD)"),
        ("POST /tables/t/keys/a/events", 405, "(allowed: GET, HEAD)"),
        ("POST /tables/t/events", 405, "(allowed: GET, HEAD)"),
        ("GET /tables/t/lookup", 405, "method GET is not allowed on /tables/t/lookup (allowed: POST)"),
        ("POST /tables/t/elsewhere", 404, "no such path"),
        ("POST /tables/t/keys/a/b", 404, "no such path"),
    ]
    for path, status, message in cases:
        method, _, path = path.rpartition(" ")
        r = f.request(method or "GET", path, body=b"{}" if method == "POST" else None,
                      headers={"Content-Type": "application/json"} if method == "POST" else {})
        assert r.status == status, (path, r.status, r.text)
        assert r.headers["content-type"] == "application/json"
        assert message in r.json()["message"], (path, r.text)
        assert r.json()["error_code"] == status
        if status == 405:  # RFC 9110 15.5.6: the methods the path does serve
            assert r.headers.get("allow") == ("POST" if method == "GET" else "GET, HEAD"), r.headers


def test_not_ready_answers_503(dev_broker, run_ferry, tmp_path, refused_port):
    # nothing listens there, nor can start to: the table never leaves `starting`
    f = run_ferry(config(dev_broker, [
        table("t", unique("t"), tmp_path / "s",
              kafka={"bootstrap.servers": refused_port.address})]))
    r = f.get("/tables/t/keys/anything")
    assert r.status == 503
    assert r.headers["retry-after"] == "1"
    assert "table 't' is starting" in r.json()["message"]
    ready = f.get("/readyz")
    assert ready.status == 503 and "table t is starting" in ready.text
    assert f.get("/tables/t").json()["state"] == "starting"


def test_status_and_list(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    produce(broker.bootstrap, topic, [("a", "1"), ("b", "2"), ("a", "3")],
            partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    st = f.get("/tables/t").json()
    assert st["name"] == "t" and st["topic"] == topic and st["state"] == "ready"
    assert st["keys"] == 2 and st["lag"] == 0 and st["rebuilding"] is False
    assert len(st["partitions"]) == 30
    assert sum(p["applied"] for p in st["partitions"]) == 3
    listed = f.get("/tables").json()["tables"]
    assert [t["name"] for t in listed] == ["t"] and "partitions" not in listed[0]
    m = f.metrics()
    assert m.get("ferry_table_keys", table="t") == 2
    assert m.get("ferry_table_ready", table="t") == 1


def test_status_of_a_topic_of_1000_partitions(start_dev_broker, run_ferry, tmp_path):
    """GET /tables/{table} lists every partition of a wide topic. (Its answer was capped at
    64 KiB, about 850 partitions: the rest were cut off.)"""
    topic = unique("wide")
    broker = start_dev_broker("--topic", f"{topic}:1000")
    produce(broker.bootstrap, topic, [("a", "1")], partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(120)
    r = f.get("/tables/t")
    assert r.status == 200, (r.status, r.text[:300])
    st = r.json()
    assert [p["partition"] for p in st["partitions"]] == list(range(1000))
    assert st["keys"] == 1 and sum(p["applied"] for p in st["partitions"]) == 1


def stored_at_start(ferry):
    m = ferry.wait_log(r"already applied", timeout=60)
    line = m.string
    got = re.search(r"(\d+) of (\d+) record\(s\)", line)
    return int(got.group(1)), int(got.group(2))


def test_restart_resumes_from_stored_offsets(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    produce(broker.bootstrap, topic, [(f"k{i}", f"v{i}") for i in range(500)],
            partitioner="murmur2_random")
    cfg = config(broker.bootstrap, [table("t", topic, tmp_path / "s")])
    f = run_ferry(cfg, name="first")
    f.wait_ready(60)
    assert stored_at_start(f) == (0, 500)
    # the load was one transaction, committed once it reached the end, not at its 5 s limit
    assert metric(f, "ferry_table_apply_batch_seconds_count", table="t") == 1
    assert metric(f, "ferry_table_apply_batch_seconds_sum", table="t") < 4.5
    f.stop()
    produce(broker.bootstrap, topic, [(f"k{i}", f"w{i}") for i in range(100)],
            partitioner="murmur2_random")
    g = run_ferry(cfg, name="second")
    g.wait_ready(60)
    assert stored_at_start(g) == (500, 600)
    assert applied(g, "t") == 100  # nothing was applied twice
    assert g.get("/tables/t/keys/k5").body == b"w5"
    assert g.get("/tables/t/keys/k200").body == b"v200"


@pytest.mark.parametrize("when", ["loading", "ready"])
def test_kill9_during_apply_leaves_a_replayable_store(broker30, run_ferry, tmp_path, when):
    """kill -9 in the middle of a load (its one large transaction open: the restart usually
    starts from nothing) or of a burst the ready table applies in small transactions (the
    producer holds back the rest of the records until the kill, so the restart starts from a
    middle offset): the restart starts at the stored offsets and ends equal to a replay."""
    broker, topic = broker30
    n = 200000
    rnd = random.Random(3)
    records = [(f"k{rnd.randrange(20000)}", f"v{i}") for i in range(n)]
    last = {}
    for k, v in records:
        last[k] = v
    cfg = config(broker.bootstrap, [table("t", topic, tmp_path / "s")])
    if when == "loading":
        produce(broker.bootstrap, topic, records, partitioner="murmur2_random", timeout=120)
        f = run_ferry(cfg, name="killed")
        f.wait_log(r'msg="applying', timeout=60)
        f.send_signal(signal.SIGKILL)
        f.wait(10)
    else:
        f = run_ferry(cfg, name="killed")
        f.wait_ready(60)
        killed = threading.Event()
        producer = StepProducer(broker, topic, records, hold_after=2, until=killed)
        producer.start()
        wait_until(lambda: applied(f, "t") > 0, 60, "some records to be applied")
        f.send_signal(signal.SIGKILL)
        f.wait(10)
        killed.set()
        producer.finish(180)
    g = run_ferry(cfg, name="restarted")
    stored, total = stored_at_start(g)
    assert total == n
    if when == "ready":
        assert stored < n  # the records after the first steps came after the kill
    g.wait_ready(120)
    assert applied(g, "t") == n - stored  # started exactly at the stored offsets
    reader = Reader(g)
    try:
        for k, v in last.items():
            status, _, body = reader.key("t", k)
            assert status == 200 and body.decode() == v, (k, status, body)
    finally:
        reader.close()


class StepProducer(threading.Thread):
    """Produces records in steps of 10,000, each waiting for its delivery; after hold_after
    steps, waits until the event is set before going on. finish() joins it and raises what it
    raised."""

    def __init__(self, broker, topic, records, hold_after, until, step=10000):
        super().__init__(daemon=True)
        self.args = (broker, topic, records, hold_after, until, step)
        self.error = None

    def run(self):
        broker, topic, records, hold_after, until, step = self.args
        try:
            for n, i in enumerate(range(0, len(records), step)):
                if n == hold_after and not until.wait(120):
                    raise AssertionError("the producer was never told to go on")
                produce(broker.bootstrap, topic, records[i:i + step],
                        partitioner="murmur2_random", timeout=120)
        except BaseException as e:  # handed to the test by finish()
            self.error = e

    def finish(self, timeout):
        self.join(timeout)
        assert not self.is_alive(), "the producer did not finish"
        if self.error:
            raise self.error


def run_on_a_recreated_topic(start_dev_broker, run_ferry, tmp_path, between=None):
    """Loads table t from a topic holding old=1, stops, calls between(store path), then starts
    ferry again on the same store against a new cluster whose topic holds new=2. Returns that
    second ferry once it has swapped in its rebuilt store."""
    topic = unique("t")
    first = start_dev_broker("--topic", f"{topic}:4", name="first-cluster")
    produce(first.bootstrap, topic, [("old", "1")], partitioner="murmur2_random")
    path = tmp_path / "s"
    f = run_ferry(config(first.bootstrap, [table("t", topic, path)]), name="before")
    f.wait_ready(60)
    assert f.get("/tables/t/keys/old").status == 200
    f.stop()
    first.stop()
    if between:
        between(path)
    second = start_dev_broker("--topic", f"{topic}:4", name="second-cluster")
    produce(second.bootstrap, topic, [("new", "2")], partitioner="murmur2_random")
    g = run_ferry(config(second.bootstrap, [table("t", topic, path)]), name="after")
    g.wait_log(r"REBUILDING the store from the earliest offsets: ", timeout=60)
    g.wait_log(r"the rebuilt store has caught up and replaced the old one", timeout=60)
    g.wait_ready(60)
    assert g.get("/tables/t/keys/new").body == b"2"
    assert g.get("/tables/t/keys/old").status == 404
    assert not (tmp_path / "s.rebuild").exists()
    return g


def test_recreated_topic_is_rebuilt(start_dev_broker, run_ferry, tmp_path):
    g = run_on_a_recreated_topic(start_dev_broker, run_ferry, tmp_path)
    assert "ferry-rebuilding" not in g.get("/tables/t/keys/new").headers
    assert not (tmp_path / "s.old").exists()


def test_rebuilt_store_replaces_one_with_a_file_of_its_own(start_dev_broker, run_ferry, tmp_path):
    # Another file in the store's directory made the swap fail after the old store's files were
    # deleted: the table then answered 500 for good. The old directory now moves aside whole.
    def add_file(path):
        (path / "notes.txt").write_text("an operator's file\n")
    g = run_on_a_recreated_topic(start_dev_broker, run_ferry, tmp_path, add_file)
    g.wait_log(r"level=warn .*the rebuilt store is in place, but .*s\.old", timeout=10)
    assert (tmp_path / "s.old" / "notes.txt").exists()


def test_a_recreated_topic_puts_another_value_at_the_same_place(start_dev_broker, run_ferry,
                                                                  tmp_path):
    """A topic deleted and created again starts its offsets at 0 again: the key's new record
    has the partition and offset of its old one, with another value. The tag names the value
    too, so the old ETag gets 200 with the new value, a long poll with it answers at once, and
    a key's stream resumed with the old id sends the new row. (With "<partition>:<offset>"
    alone, the old ETag got 304, the long poll waited out its time, and the stream sent only
    sync.)"""
    import time
    from test_table_events import Stream  # that module imports this one: imported here
    topic = unique("t")
    path = tmp_path / "s"
    first = start_dev_broker("--topic", f"{topic}:1", name="first-cluster")
    # another record after K's: the store's offset is then past the new topic's end, which is
    # how the table notices the recreate (with as many records as before it would not)
    [old, _] = produce(first.bootstrap, topic, [("K", '{"v":"old"}'), ("X", "1")],
                       partitioner="murmur2_random")
    f = run_ferry(config(first.bootstrap, [table("t", topic, path)]), name="before")
    f.wait_ready(60)
    old_tag = f.get("/tables/t/keys/K").headers["etag"]
    s = Stream(f, "/tables/t/keys/K/events")
    old_id = s.state()[0]["id"]
    s.close()
    assert f'"{old_id}"' == old_tag
    f.stop()
    first.stop()

    second = start_dev_broker("--topic", f"{topic}:1", name="second-cluster")
    [new] = produce(second.bootstrap, topic, [("K", '{"v":"new"}')], partitioner="murmur2_random")
    assert (new.partition(), new.offset()) == (old.partition(), old.offset())
    new_tag = etag(new.partition(), new.offset(), '{"v":"new"}')
    g = run_ferry(config(second.bootstrap, [table("t", topic, path)]), name="after")
    g.wait_log(r"REBUILDING the store from the earliest offsets: ", timeout=60)
    g.wait_log(r"the rebuilt store has caught up and replaced the old one", timeout=60)
    g.wait_ready(60)

    got, want = {}, {}
    r = g.get("/tables/t/keys/K", headers={"If-None-Match": old_tag})
    got["GET with the old ETag"] = (r.status, r.body, r.headers.get("etag"))
    want["GET with the old ETag"] = (200, b'{"v":"new"}', new_tag)
    started = time.monotonic()
    r = g.get("/tables/t/keys/K", headers={"If-None-Match": old_tag, "Prefer": "wait=20"},
              timeout=60)
    got["long poll with the old ETag"] = (r.status, r.body, time.monotonic() - started < 10)
    want["long poll with the old ETag"] = (200, b'{"v":"new"}', True)
    s = Stream(g, "/tables/t/keys/K/events", headers={"Last-Event-ID": old_id})
    got["stream resumed at the old id"] = [(e["event"], e.get("id"), e["data"].get("value"))
                                           for e in s.state()]
    s.close()
    want["stream resumed at the old id"] = [("put", new_tag.strip('"'), {"v": "new"}),
                                            ("sync", None, None)]
    assert got == want
    assert old_tag == etag(old.partition(), old.offset(), '{"v":"old"}'), old_tag
    # the new tag and id are the row's own
    assert g.get("/tables/t/keys/K", headers={"If-None-Match": new_tag}).status == 304
    s = Stream(g, "/tables/t/keys/K/events", headers={"Last-Event-ID": new_tag.strip('"')})
    assert [e["event"] for e in s.state()] == ["sync"]
    s.close()


def test_instances_holding_the_same_records_give_the_same_tags(broker30, run_ferry, tmp_path):
    """Two instances of placement all behind a load balancer: a tag one gave matches at the
    other, so a long poll or a resumed stream that lands on the other instance still waits."""
    from test_table_events import Stream
    broker, topic = broker30
    value = '{"blob":"' + "x" * 1000 + '"}'  # past the hash's 32-byte lanes, and a tail
    [msg] = produce(broker.bootstrap, topic, [("K", value)], partitioner="murmur2_random")
    a = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "a")]), name="a")
    b = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "b")]), name="b")
    a.wait_ready(60)
    b.wait_ready(60)
    tag = a.get("/tables/t/keys/K").headers["etag"]
    assert tag == b.get("/tables/t/keys/K").headers["etag"] == etag(msg.partition(), msg.offset(),
                                                                     value)
    assert b.get("/tables/t/keys/K", headers={"If-None-Match": tag}).status == 304
    r = b.get("/tables/t/keys/K", headers={"If-None-Match": tag, "Prefer": "wait=1"})
    assert r.status == 304 and r.headers["etag"] == tag
    s = Stream(b, "/tables/t/keys/K/events", headers={"Last-Event-ID": tag.strip('"')})
    assert [e["event"] for e in s.state()] == ["sync"]
    s.close()


def low_watermark(bootstrap, topic, partition):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("watermarks")})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[0]
    finally:
        c.close()


def test_a_rebuild_while_running_starts_at_the_earliest_offsets_then(start_dev_broker, run_ferry,
                                                                      tmp_path):
    """A ready table whose consumer fell behind retention (ferry frozen while 8 MiB went into a
    partition of which the dev broker keeps about 5) rebuilds from the earliest offsets as they
    are then, once. (It assigned "the beginning", which librdkafka 2.0.2 resolves to where the
    same consumer was before: out of range again, and the table rebuilt over and over.)"""
    topic = unique("t")
    broker = start_dev_broker("--topic", f"{topic}:2")
    small = produce(broker.bootstrap, topic,
                    [{"key": f"k{i}", "value": f"v{i}", "partition": i % 2} for i in range(100)])
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    f.send_signal(signal.SIGSTOP)
    try:
        big = produce(broker.bootstrap, topic,
                      [{"key": f"big{i}", "value": "x" * 200_000, "partition": 0}
                       for i in range(40)] + [{"key": "last", "value": "1", "partition": 0}])
    finally:
        f.send_signal(signal.SIGCONT)
    low = low_watermark(broker.bootstrap, topic, 0)
    assert low > 50, low  # every small record of partition 0 is gone
    f.wait_log(r"the rebuilt store has caught up and replaced the old one", timeout=60)
    f.wait_ready(60)
    expected = {}
    for m in small + big:
        if m.partition() == 1 or m.offset() >= low:
            expected[m.key().decode()] = m.value()
    reader = Reader(f)
    try:
        for k, v in expected.items():
            status, headers, body = reader.key("t", k)
            assert status == 200 and body == v, (k, status, body[:40])
            assert "ferry-rebuilding" not in headers
        assert reader.key("t", "k0")[0] == 404  # partition 0's records before low are gone
    finally:
        reader.close()
    st = f.get("/tables/t").json()
    assert st["rebuilding"] is False and st["keys"] == len(expected), st
    assert f.stderr_text().count("records the table never applied are gone") == 1, f.describe()


def test_full_store_stops_applying_and_keeps_answering(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    produce(broker.bootstrap, topic, [(f"small{i}", "s") for i in range(20)],
            partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s", max_size="1MiB")]))
    f.wait_ready(60)
    produce(broker.bootstrap, topic, [(f"big{i}", "x" * 8000) for i in range(400)],
            partitioner="murmur2_random")
    f.wait_log(r"the store is full \(\d+ bytes used of max_size \d+\)", timeout=60)
    wait_until(lambda: f.get("/tables/t").json()["state"] == "full", 30, "state full")
    ready = f.get("/readyz")
    assert ready.status == 503 and "table t is full" in ready.text
    assert metric(f, "ferry_table_ready", table="t") == 0
    for i in range(20):  # reads go on
        r = f.get(f"/tables/t/keys/small{i}")
        assert r.status == 200 and r.body == b"s"


def test_a_rebuild_that_fills_its_store_leaves_the_old_one_answering(start_dev_broker, run_ferry,
                                                                      tmp_path):
    """A rebuild while running (as above) whose store passes max_size: the old store goes on
    answering, as a full store does, and min_offset is answered from what it holds. (The log
    gave the old store's size, and the table stayed rebuilding for good: every min_offset read
    waited for a swap that never came, and answered 504.)"""
    topic = unique("t")
    broker = start_dev_broker("--topic", f"{topic}:2")
    produce(broker.bootstrap, topic,
            [{"key": f"k{i}", "value": f"v{i}", "partition": i % 2} for i in range(100)])
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s", max_size="2MiB")]))
    f.wait_ready(60)
    f.send_signal(signal.SIGSTOP)
    try:
        produce(broker.bootstrap, topic,
                [{"key": f"big{i}", "value": "x" * 200_000, "partition": 0} for i in range(40)])
    finally:
        f.send_signal(signal.SIGCONT)
    f.wait_log(r"the rebuilt store is full \(\d+ bytes used of max_size \d+\): applying stopped, "
               r"reads go on from the old store", timeout=60)
    wait_until(lambda: f.get("/tables/t").json()["state"] == "full", 30, "state full")
    st = f.get("/tables/t").json()
    assert st["rebuilding"] is False and st["keys"] == 100, st
    assert [p["applied"] for p in st["partitions"]] == [50, 50], st
    for k in ("k0", "k1"):
        r = f.get(f"/tables/t/keys/{k}")
        assert r.status == 200 and "ferry-rebuilding" not in r.headers, (k, r.status, r.text)
    r = f.get("/tables/t/keys/k1?min_offset=1:10,0:49", headers={"Prefer": "wait=2"})
    assert r.status == 200 and r.body == b"v1", (r.status, r.text)
    r = f.get("/tables/t/keys/k1?min_offset=0:50", headers={"Prefer": "wait=1"})
    assert r.status == 504 and "not applied min_offset yet" in r.text, (r.status, r.text)
    assert not (tmp_path / "s.rebuild").exists()


def test_a_store_full_before_it_was_ever_ready_answers_nothing(broker30, run_ferry, tmp_path):
    """A table that fills up while it loads holds part of the topic: it keeps answering 503,
    never a 404 for a key it did not get to."""
    broker, topic = broker30
    produce(broker.bootstrap, topic, [(f"big{i}", "x" * 8000) for i in range(400)],
            partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s", max_size="1MiB")]))
    f.wait_log(r"the store is full \(\d+ bytes used of max_size \d+\)", timeout=60)
    wait_until(lambda: f.get("/tables/t").json()["state"] == "full", 30, "state full")
    for i in range(400):
        r = f.get(f"/tables/t/keys/big{i}")
        assert r.status == 503 and r.headers["retry-after"], (i, r.status, r.text)
    assert "is full" in r.json()["message"], r.text


# A volume that runs out of room, acted out without mounting one: this library, preloaded into
# ferry, makes posix_fallocate answer ENOSPC while the file named by $FERRY_TEST_NO_SPACE exists.
NO_SPACE_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

static int no_space(void)
{
    const char *flag = getenv("FERRY_TEST_NO_SPACE");
    return flag && access(flag, F_OK) == 0;
}

/* $FERRY_TEST_FILE_LIMIT: no file may have blocks past this many bytes */
static int past_limit(off_t offset, off_t len)
{
    const char *limit = getenv("FERRY_TEST_FILE_LIMIT");
    return limit && offset + len > (off_t)atoll(limit);
}

int posix_fallocate(int fd, off_t offset, off_t len)
{
    int (*real)(int, off_t, off_t) = (int (*)(int, off_t, off_t))dlsym(RTLD_NEXT, "posix_fallocate");
    return no_space() || past_limit(offset, len) ? ENOSPC : real(fd, offset, len);
}
"""


def no_space_env(tmp_path):
    """Builds the shim; returns ferry's environment with it preloaded, and the flag file."""
    import shutil
    import subprocess
    from ferrytest import sanitizer_env
    if not shutil.which("cc"):
        pytest.skip("no C compiler for the posix_fallocate shim")
    src, lib, flag = tmp_path / "shim.c", tmp_path / "shim.so", tmp_path / "no-space"
    src.write_text(NO_SPACE_SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src), "-ldl"], check=True)
    asan = sanitizer_env()["ASAN_OPTIONS"] + ":verify_asan_link_order=0"
    return {"LD_PRELOAD": str(lib), "FERRY_TEST_NO_SPACE": str(flag), "ASAN_OPTIONS": asan}, flag


def test_a_full_volume_stops_applying_until_it_has_room(broker30, run_ferry, tmp_path):
    """The store's volume has no room for the blocks a batch may take: the table reports
    disk_full and answers from what is stored, then goes on from its stored offsets by itself
    once there is room. (The store wrote through its map into a sparse file: a full volume was
    a SIGBUS, again after every restart.)"""
    broker, topic = broker30
    env, flag = no_space_env(tmp_path)
    produce(broker.bootstrap, topic, [(f"small{i}", "s") for i in range(20)],
            partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]), env=env)
    f.wait_ready(60)
    flag.touch()
    # more than the 8 MiB the store reserves ahead of what it uses
    big = produce(broker.bootstrap, topic, [(f"big{i}", "x" * 200_000) for i in range(60)],
                  partitioner="murmur2_random")
    f.wait_log(r"no disk space: the volume has \d+ bytes free \(No space left on device\).*"
               r"Applying stopped, reads go on from what is stored", timeout=60)
    assert str(tmp_path / "s") in [l for l in f.log_lines() if "no disk space" in l][0]
    wait_until(lambda: f.get("/tables/t").json()["state"] == "disk_full", 30, "state disk_full")
    ready = f.get("/readyz")
    assert ready.status == 503 and "table t is disk_full" in ready.text
    assert metric(f, "ferry_table_ready", table="t") == 0
    for i in range(20):  # reads go on
        r = f.get(f"/tables/t/keys/small{i}")
        assert r.status == 200 and r.body == b"s"
    # what the last transactions wrote before the room ran out was committed with the offsets
    # it reaches: a record reads back exactly when it lies below its partition's offset
    applied_at = {p["partition"]: p["applied"] for p in f.get("/tables/t").json()["partitions"]}
    assert any(m.offset() < applied_at[m.partition()] for m in big), applied_at
    for m in big:
        r = f.get(f"/tables/t/keys/{m.key().decode()}")
        assert (r.status == 200) == (m.offset() < applied_at[m.partition()]), (m.key(), r.status)
    flag.unlink()
    f.wait_log(r"the store's volume has room again: applying goes on", timeout=30)
    f.wait_ready(60)
    # ready is within ready_lag of the end: wait for the whole topic before reading it back
    wait_until(lambda: f.get("/tables/t").json()["lag"] == 0, 60, "the table caught up")
    for i in range(60):  # nothing was lost
        r = f.get(f"/tables/t/keys/big{i}")
        assert r.status == 200 and len(r.body) == 200_000, (i, r.status)


def test_a_load_that_fits_the_volume_but_not_its_reservation_loads_whole(broker30, run_ferry,
                                                                          tmp_path):
    """A load's transaction reserves disk blocks for up to 4 pages a record, far more than it
    takes: on a volume with room for the data but not for that, the transaction commits what it
    has written and goes on in a new one, and every record is loaded. (The table reported
    disk_full instead, and looked for room every 5 s for good.)"""
    broker, topic = broker30
    env, _ = no_space_env(tmp_path)
    env["FERRY_TEST_FILE_LIMIT"] = str(16 * 1024 * 1024)  # about 4 MB of records to hold
    records = [(f"k{i:05d}", f"v{i}-" + "x" * 300) for i in range(12000)]
    produce(broker.bootstrap, topic, records, partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]), env=env)
    f.wait_ready(120)
    wait_until(lambda: f.get("/tables/t").json()["lag"] == 0, 60, "the table caught up")
    st = f.get("/tables/t").json()
    assert st["state"] == "ready" and st["keys"] == len(records), st
    assert applied(f, "t") == len(records)
    reader = Reader(f)
    try:
        for k, v in records:
            status, _, body = reader.key("t", k)
            assert status == 200 and body == v.encode(), (k, status, body[:40])
    finally:
        reader.close()
    log = f.stderr_text()
    assert "short of the room a transaction reserves" in log, f.describe()
    assert "no disk space" not in log, f.describe()


def test_a_rebuild_that_runs_out_of_disk_leaves_the_old_store_answering(start_dev_broker,
                                                                         run_ferry, tmp_path):
    """A rebuild while running whose volume has no room: the rebuilt store is deleted (its blocks
    are what filled the volume) and the old one goes on answering, reported disk_full. (The
    table waited for room with the rebuild's files kept and the table marked rebuilding.)"""
    topic = unique("t")
    broker = start_dev_broker("--topic", f"{topic}:2")
    produce(broker.bootstrap, topic,
            [{"key": f"k{i}", "value": f"v{i}", "partition": i % 2} for i in range(100)])
    env, _ = no_space_env(tmp_path)
    env["FERRY_TEST_FILE_LIMIT"] = str(4 * 1024 * 1024)  # the old store stays far below
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]), env=env)
    f.wait_ready(60)
    f.send_signal(signal.SIGSTOP)
    try:  # out of retention, and more than the limit
        produce(broker.bootstrap, topic,
                [{"key": f"big{i}", "value": "x" * 200_000, "partition": 0} for i in range(40)])
    finally:
        f.send_signal(signal.SIGCONT)
    f.wait_log(r"the store being rebuilt ran out of disk space: it is deleted", timeout=60)
    wait_until(lambda: f.get("/tables/t").json()["state"] == "disk_full", 30, "state disk_full")
    st = f.get("/tables/t").json()
    assert st["rebuilding"] is False and st["keys"] == 100, st
    assert not (tmp_path / "s.rebuild").exists()
    for k in ("k0", "k1"):
        r = f.get(f"/tables/t/keys/{k}")
        assert r.status == 200 and "ferry-rebuilding" not in r.headers, (k, r.status, r.text)


# --------------------------------------------------------------------------------------------
# Reads that wait: long polls and read-your-writes


def long_poll(ferry, path, etag, wait_s, out):
    """Runs in a thread: a GET with If-None-Match and Prefer: wait; out gets (status, body, t)."""
    import time
    started = time.monotonic()
    r = ferry.get(path, headers={"If-None-Match": etag, "Prefer": f"wait={wait_s}"},
                  timeout=wait_s + 30)
    out.append((r.status, r.body, time.monotonic(), started, r.headers))


def test_long_poll_wakes_on_change_and_times_out(broker30, run_ferry, tmp_path):
    import threading
    import time
    broker, topic = broker30
    produce(broker.bootstrap, topic, [("AAPL", "1")], partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    etag = f.get("/tables/t/keys/AAPL").headers["etag"]
    # nothing changes: 304 after the wait, with the same ETag
    out = []
    long_poll(f, "/tables/t/keys/AAPL", etag, 1, out)
    status, _, done, started, headers = out[0]
    assert status == 304 and headers["etag"] == etag and done - started >= 0.9
    # a change wakes the poll: it answers soon after the table applied the record, long
    # before its 60 s wait is over (a produce and an apply take seconds on a busy machine)
    out = []
    th = threading.Thread(target=long_poll, args=(f, "/tables/t/keys/AAPL", etag, 60, out))
    th.start()
    wait_until(lambda: metric(f, "ferry_table_waiters", table="t") == 1, 30, "the poll to park")
    producer_done = time.monotonic()
    produce(broker.bootstrap, topic, [("AAPL", "2")], partitioner="murmur2_random")
    th.join(120)
    status, body, answered, _, headers = out[0]
    assert status == 200 and body == b"2" and headers["etag"] != etag
    assert answered - producer_done < 45, "the poll did not wake on the change"
    assert metric(f, "ferry_table_waiters", table="t") == 0


def test_long_poll_wakes_within_100ms_of_the_apply(broker30, run_ferry, tmp_path):
    """A parked poll answers under 100 ms after its key's change became readable, seen by a
    reader polling the key with plain GETs at the same time. Best of three tries, so that a
    scheduler hiccup of a busy machine is not taken for a slow wake-up; a wake-up that waited
    for anything but the commit (a timer, the deadline) fails all three."""
    import threading
    import time
    broker, topic = broker30
    produce(broker.bootstrap, topic, [("K", "0")], partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    delays = []
    reader = Reader(f)
    try:
        for attempt in range(1, 4):
            etag = f.get("/tables/t/keys/K").headers["etag"]
            out = []
            th = threading.Thread(target=long_poll, args=(f, "/tables/t/keys/K", etag, 30, out))
            th.start()
            wait_until(lambda: metric(f, "ferry_table_waiters", table="t") == 1, 30,
                       "the poll to park")
            produce(broker.bootstrap, topic, [("K", str(attempt))], partitioner="murmur2_random")
            wait_until(lambda: reader.key("t", "K")[2] == str(attempt).encode(), 25,
                       "the new value", interval=0.002, max_interval=0.002)
            seen = time.monotonic()
            th.join(40)
            assert out and out[0][0] == 200 and out[0][1] == str(attempt).encode()
            delays.append(out[0][2] - seen)
    finally:
        reader.close()
    assert min(delays) < 0.1, f"polls answered {delays} s after a GET saw the change"


def test_long_poll_limits_and_bad_prefer(broker30, run_ferry, tmp_path):
    import threading
    broker, topic = broker30
    produce(broker.bootstrap, topic, [("K", "1")], partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [
        table("t", topic, tmp_path / "s", limits={"max_waiters": 2})]))
    f.wait_ready(60)
    etag = f.get("/tables/t/keys/K").headers["etag"]
    outs = [[], []]
    # the two polls must still be parked when the third read comes: they wait 20 s
    threads = [threading.Thread(target=long_poll, args=(f, "/tables/t/keys/K", etag, 20, o))
               for o in outs]
    for th in threads:
        th.start()
    wait_until(lambda: metric(f, "ferry_table_waiters", table="t") == 2, 15, "two polls to park")
    r = f.get("/tables/t/keys/K", headers={"If-None-Match": etag, "Prefer": "wait=5"})
    assert r.status == 429 and "max_waiters" in r.json()["message"]
    r = f.get("/tables/t/keys/K", headers={"If-None-Match": etag, "Prefer": "wait=soon"})
    assert r.status == 400 and "Prefer: expected wait=<seconds>" in r.json()["message"]
    # a key that is not there is answered at once, wait or not
    assert f.get("/tables/t/keys/none", headers={"If-None-Match": etag,
                                                   "Prefer": "wait=5"}).status == 404
    for th in threads:
        th.join(60)
    assert [o[0][0] for o in outs] == [304, 304]
    # Only the `wait` preference waits, found as a whole token among others.
    r = f.get("/tables/t/keys/K", headers={"If-None-Match": etag,
                                           "Prefer": "nowait=30, x-wait=30"}, timeout=10)
    assert r.status == 304
    r = f.get("/tables/t/keys/K", headers={"If-None-Match": etag,
                                           "Prefer": "respond-async, Wait = 1; x=y"}, timeout=10)
    assert r.status == 304


def test_read_your_writes_after_an_ingest_post(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")],
                         ingest={"rest_proxy": {"topics": [topic]}}))
    f.wait_ready(60)
    for i in range(20):
        r = f.request("POST", f"/topics/{topic}",
                      body=f'{{"records":[{{"key":"user","value":{{"n":{i}}}}}]}}',
                      headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
                      timeout=30)
        assert r.status == 200, r.text
        o = r.json()["offsets"][0]
        got = f.get(f'/tables/t/keys/"user"?min_offset={o["partition"]}:{o["offset"]}',
                    headers={"Prefer": "wait=30"}, timeout=60)  # not 5 s: a busy machine
        assert got.status == 200 and got.json() == {"n": i}, (i, got.status, got.text)
        assert got.headers["ferry-offset"] == str(o["offset"])


def test_min_offset_not_reached_answers_504_and_bad_ones_400(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    produce(broker.bootstrap, topic, [("K", "1")], partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    r = f.get("/tables/t/keys/K?min_offset=3:1000,4:5", headers={"Prefer": "wait=1"})
    assert r.status == 504 and "1007 record(s) behind it" in r.json()["message"]
    r = f.get("/tables/t/keys/K?min_offset=3:1000&min_offset=4:5", headers={"Prefer": "wait=0"})
    assert r.status == 504
    # The largest offsets: the count of records behind saturates, it does not overflow.
    top = 2**63 - 1
    for mins in (f"3:{top}", f"3:{top},4:{top}", f"3:{2**62},4:{2**62}"):
        r = f.get(f"/tables/t/keys/K?min_offset={mins}", headers={"Prefer": "wait=0"})
        assert r.status == 504, (mins, r.status, r.text)
        assert f"{top} record(s) behind it" in r.json()["message"], (mins, r.text)
    assert f.get("/healthz").status == 200
    for bad in ("30:1", "x:1", "1:-1", "1", "1:2:3", ""):
        r = f.get(f"/tables/t/keys/K?min_offset={bad}")
        assert r.status == 400 and "min_offset: expected partition:offset" in r.text, bad


def test_min_offset_with_if_none_match_answers_at_once(broker30, run_ferry, tmp_path):
    """min_offset with If-None-Match waits for the offsets, then answers at once (docs/tables.md):
    also when the offsets were applied before the request came, with or without Prefer: wait."""
    import time
    broker, topic = broker30
    [msg] = produce(broker.bootstrap, topic, [("K", "1")], partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    etag = f.get("/tables/t/keys/K").headers["etag"]
    path = f"/tables/t/keys/K?min_offset={msg.partition()}:{msg.offset()}"
    # (the bound is below the wait a read would do for a change: 5 s by default, or 60 s)
    for prefer, bound in ((None, 4), ("wait=60", 30)):
        headers = {"If-None-Match": etag}
        if prefer:
            headers["Prefer"] = prefer
        started = time.monotonic()
        r = f.get(path, headers=headers, timeout=90)
        assert r.status == 304 and r.headers["etag"] == etag, (prefer, r.status, r.text)
        assert time.monotonic() - started < bound, f"waited for a change ({prefer})"
    r = f.get(path, headers={"If-None-Match": '"0:999"'})
    assert r.status == 200 and r.body == b"1"
    assert metric(f, "ferry_table_waiters", table="t") == 0


def test_reads_without_min_offset_do_not_wait_for_a_rebuild(start_dev_broker, run_ferry,
                                                             tmp_path):
    """While a rebuilt store catches up, reads come from the old one, and a read without
    min_offset has nothing to wait for: it answers at once and takes no place among
    limits.max_waiters (0 here: a read that parks is 429), Prefer: wait or not. (Every key read
    was parked during a rebuild: 429 here, and a wait held until a commit or its deadline.) The
    rebuild fetches about 1 KiB at a time and its broker is frozen (SIGSTOP) as soon as it
    began, so that it is still going while the reads are made."""
    import os
    import time
    topic = unique("t")
    slow = {"message.max.bytes": "1000", "fetch.max.bytes": "1024",
            "max.partition.fetch.bytes": "1024", "queued.min.messages": "1",
            "queued.max.messages.kbytes": "1"}

    def cfg(bootstrap):
        return config(bootstrap, [table("t", topic, tmp_path / "s", kafka=slow,
                                        limits={"max_waiters": 0})])

    first = start_dev_broker("--topic", f"{topic}:1", name="first-cluster")
    produce(first.bootstrap, topic, [("old", "1")])
    f = run_ferry(cfg(first.bootstrap), name="before")
    f.wait_ready(60)
    f.stop()
    first.stop()
    # two partitions now: the store no longer fits the topic
    second = start_dev_broker("--topic", f"{topic}:2", name="second-cluster")
    produce(second.bootstrap, topic,  # about 1.5 s of fetches, 4 MiB a partition at most
            [{"key": f"new{i}", "value": "x" * 100, "partition": i % 2} for i in range(60000)])
    g = run_ferry(cfg(second.bootstrap), name="after")

    def rebuilding_and_ready():
        st = g.get("/tables/t").json()
        return st["rebuilding"] and st["ready"]

    wait_until(rebuilding_and_ready, 60, "the rebuild to begin", interval=0.005,
               max_interval=0.005)
    os.kill(second.pid, signal.SIGSTOP)
    try:
        assert g.get("/tables/t").json()["rebuilding"], "the rebuild ended before its broker froze"
        r = g.get("/tables/t/keys/old")
        assert r.status == 200 and r.body == b"1", (r.status, r.text)
        assert r.headers["ferry-rebuilding"] == "true"
        assert g.get("/tables/t/keys/new0").status == 404  # in the new store only
        started = time.monotonic()
        r = g.get("/tables/t/keys/old", headers={"Prefer": "wait=30"}, timeout=60)
        assert r.status == 200 and r.body == b"1", (r.status, r.text)
        assert time.monotonic() - started < 15, "a read without If-None-Match waited"
        r = g.get("/tables/t/keys/old", headers={"If-None-Match": r.headers["etag"]})
        assert r.status == 304, (r.status, r.text)
        assert g.get("/tables/t").json()["rebuilding"]
    finally:
        os.kill(second.pid, signal.SIGCONT)
    g.wait_log(r"the rebuilt store has caught up and replaced the old one", timeout=60)
    assert g.get("/tables/t/keys/old").status == 404


def test_shutdown_answers_parked_reads(broker30, run_ferry, tmp_path):
    import threading
    broker, topic = broker30
    produce(broker.bootstrap, topic, [("K", "1")], partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    etag = f.get("/tables/t/keys/K").headers["etag"]
    out = []
    th = threading.Thread(target=long_poll, args=(f, "/tables/t/keys/K", etag, 60, out))
    th.start()
    wait_until(lambda: metric(f, "ferry_table_waiters", table="t") == 1, 30, "the poll to park")
    f.stop()
    th.join(30)
    assert out and out[0][0] == 503 and out[0][4]["retry-after"] == "1"
    assert f.returncode() == 0


# --------------------------------------------------------------------------------------------
# Many keys at once: multi-get and prefix scans


def test_lookup_many_keys(broker30, run_ferry, tmp_path):
    import json
    broker, topic = broker30
    produce(broker.bootstrap, topic,
            [("a", '{"n":1}'), ("b", b"\x00\x01bin"), (b"\xffraw", "x"), ("gone", "y"), ("gone", None)],
            partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [
        table("t", topic, tmp_path / "s", limits={"max_lookup_keys": 4})]))
    f.wait_ready(60)
    r = f.request("POST", "/tables/t/lookup", body=json.dumps({"keys": ["a", "b", "gone", "a"]}))
    assert r.status == 200, r.text
    res = r.json()["results"]
    assert [x["key"] for x in res] == ["a", "b", "gone", "a"]
    assert res[0]["value"] == {"n": 1} and "value_encoding" not in res[0]
    assert base64.b64decode(res[1]["value"]) == b"\x00\x01bin"
    assert res[1]["value_encoding"] == "base64"
    assert res[2] == {"key": "gone", "error_code": 404}
    assert isinstance(res[0]["partition"], int) and isinstance(res[0]["offset"], int)
    # binary keys: asked and answered in base64
    r = f.request("POST", "/tables/t/lookup?key_format=base64",
                  body=json.dumps({"keys": [base64.b64encode(b"\xffraw").decode()]}))
    assert r.json()["results"][0]["key_encoding"] == "base64"
    assert base64.b64decode(r.json()["results"][0]["key"]) == b"\xffraw"
    assert r.json()["results"][0]["value"] == "eA=="  # "x" is not JSON: base64
    for body, message in [
        ('{"keys": ["a","b","c","d","e"]}', "more than limits.max_lookup_keys"),
        ('{"keys": [1]}', "expected an array of strings"),
        ('{"other": []}', "expected only the member \\\"keys\\\""),
        ('{"keys\\u0000x": ["a"]}', "expected only the member \\\"keys\\\""),  # not "keys"
        ('{"keys": ["a"], "keys\\u0000": ["b"]}', "expected only the member \\\"keys\\\""),
        ('not json', "expected a JSON object"),
    ]:
        r = f.request("POST", "/tables/t/lookup", body=body)
        assert r.status == 400 and message in r.text, (body, r.text)
    assert f.request("POST", "/tables/t/nope", body="{}").status == 404


def test_lookup_answer_over_its_cap_is_413(broker30, run_ferry, tmp_path):
    """docs/tables.md: a lookup whose answer would pass 64 MiB answers 413, not 400."""
    import json
    broker, topic = broker30
    produce(broker.bootstrap, topic, [("big", '"' + "v" * 900_000 + '"')],
            partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    assert f.request("POST", "/tables/t/lookup", body=json.dumps({"keys": ["big"] * 2})).status == 200
    r = f.request("POST", "/tables/t/lookup", body=json.dumps({"keys": ["big"] * 80}))
    assert r.status == 413 and "ask for fewer keys" in r.text, (r.status, r.text[:200])


def test_scan_page_over_its_cap_is_413(broker30, run_ferry, tmp_path):
    """docs/tables.md: a scan page that would pass 64 MiB answers 413."""
    broker, topic = broker30
    # 110 rows of 900 kB: about 99 MB, of which the dev broker's 5 MiB per partition keeps
    # more than 64 MiB
    produce(broker.bootstrap, topic, [(f"big:{i:03d}", '"' + "v" * 900_000 + '"')
                                      for i in range(110)], partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    assert f.get("/tables/t/keys?prefix=big:&limit=2").status == 200
    r = f.get("/tables/t/keys?prefix=big:&limit=200")
    assert r.status == 413 and "ask for fewer" in r.text, (r.status, r.text[:200])


def test_prefix_scan_pages_with_a_cursor(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    produce(broker.bootstrap, topic,
            [(f"user:{i:03d}", str(i)) for i in range(25)] + [("other", "o")],
            partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    seen, after, pages = [], None, 0
    while True:
        path = "/tables/t/keys?prefix=user:&limit=10" + (f"&after={after}" if after else "")
        page = f.get(path).json()
        pages += 1
        seen += [row["key"] for row in page["rows"]]
        if page["next"] is None:
            break
        after = page["next"]
        if pages == 1:  # writes between pages: a new key after the cursor shows up, one
            # before it does not, and a deleted one is skipped
            produce(broker.bootstrap, topic,
                    [("user:000a", "new-before"), ("user:0200", "new-after"), ("user:015", None)],
                    partitioner="murmur2_random")
            wait_until(lambda: f.get("/tables/t/keys/user:0200").status == 200, 30, "the write")
    expected = [f"user:{i:03d}" for i in range(25) if i != 15] + ["user:0200"]
    assert seen == sorted(expected), seen
    assert pages == 3
    assert f.get("/tables/t/keys?limit=0").status == 400
    assert f.get("/tables/t/keys?after=AAAA").status == 400
    assert f.get("/tables/t/keys?color=red").status == 400
    assert len(f.get("/tables/t/keys?limit=1000").json()["rows"]) == 27


def test_keys_travel_percent_encoded(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    produce(broker.bootstrap, topic, [("a/b", "slash"), ("a b", "space"), (b"\x00z", "nul")],
            partitioner="murmur2_random")
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s")]))
    f.wait_ready(60)
    assert f.get("/tables/t/keys/a%2Fb").body == b"slash"
    assert f.get("/tables/t/keys/a%20b").body == b"space"
    assert f.get("/tables/t/keys/%00z").body == b"nul"
    r = f.get("/tables/t/keys/a/b")
    assert r.status == 404 and "%2F" in r.json()["message"]
    assert f.get("/tables/t/keys/a%2").status == 400


def test_api_keys_for_tables(broker30, run_ferry, tmp_path):
    import json
    broker, topic = broker30
    produce(broker.bootstrap, topic, [("K", "v")], partitioner="murmur2_random")
    reader, writer = "reader-key-0123456789", "writer-key-0123456789"
    f = run_ferry(config(broker.bootstrap, [
        table("prices", topic, tmp_path / "a"), table("secret", topic, tmp_path / "b")],
        ingest={"auth": {"keys": [
            {"name": "reader", "key": reader, "tables": ["prices"]},
            {"name": "writer", "key": writer, "topics": [topic]}]}}))
    f.wait_ready(60)

    def get(path, key=None, method="GET", body=None):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return f.request(method, path, headers=headers, body=body)

    r = get("/tables/prices/keys/K")
    assert r.status == 401 and r.headers["www-authenticate"] == 'Bearer realm="ferry"'
    assert get("/tables/nope/keys/K").status == 401  # no hint which tables exist
    assert get("/tables/prices/keys/K", reader).body == b"v"
    r = get("/tables/secret/keys/K", reader)
    assert r.status == 403 and "API key 'reader' may not read table 'secret'" in r.text
    assert get("/tables/prices/keys/K", writer).status == 403  # topics grant no tables
    assert get("/tables/prices/keys/K", "wrong-key-0123456789").status == 401
    assert get("/tables/prices/lookup", reader, "POST", json.dumps({"keys": ["K"]})).status == 200
    assert get("/tables/secret/lookup", reader, "POST", "{}").status == 403
    assert [t["name"] for t in get("/tables", reader).json()["tables"]] == ["prices"]
    assert get("/tables").status == 401
    assert get("/tables/nope", reader).status == 404
