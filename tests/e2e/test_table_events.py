"""Table subscriptions as Server-Sent Events (docs/table-events.md).

A subscriber reads the stream line by line from a plain socket (http.client), with timeouts:
the current state first, then `sync`, then every change in commit order; tombstones as
`delete`; a reconnect with Last-Event-ID loses nothing; a subscriber that does not read is told
why and disconnected; the number of subscribers is bounded; heartbeats keep an idle stream open
past server.connection_timeout; shutdown ends every stream.
"""
import base64
import http.client
import json
import socket
import time
from urllib.parse import quote

from ferrytest import event_id, produce, unique, wait_until
from test_tables import broker30, config, metric, no_space_env, table  # noqa: F401 (a fixture)


def put(broker, topic, records):
    """Produces (key, value) records with the Java partitioner; returns their messages."""
    return produce(broker.bootstrap, topic, records, partitioner="murmur2_random")


class Stream:
    """One subscription: GET with http.client, then events read line by line."""

    def __init__(self, ferry, path, headers=None, timeout=30):
        host, port = ferry.listen.split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.conn.request("GET", path, headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.last_id = None

    def next(self, timeout=30):
        """The next event as a dict (event, id, data parsed as JSON), {"comment": text} for a
        comment line, or None at the end of the stream."""
        self.conn.sock.settimeout(timeout)
        event = {}
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line.startswith(":"):
                return {"comment": line[1:].strip()}
            if not line:
                if event:
                    event.setdefault("event", "message")
                    if "id" in event:
                        self.last_id = event["id"]
                    return event
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            event[name] = json.loads(value) if name == "data" else value

    def events(self, until, timeout=30):
        """Events (comments skipped) up to and including the first for which until(e) holds."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; got {got}"
            e = self.next(left)
            assert e is not None, f"the stream ended; got {got}"
            if "comment" in e:
                continue
            got.append(e)
            if until(e):
                return got

    def state(self, timeout=30):
        """The events up to and including `sync`."""
        return self.events(lambda e: e["event"] == "sync", timeout)

    def close(self):
        self.conn.close()


def is_event(name, key=None):
    return lambda e: e["event"] == name and (key is None or e["data"].get("key") == key)


def small_window_socket(ferry):
    """A connection to ferry whose client takes data slowly: a receive window of 4 KB."""
    host, port = ferry.listen.split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.connect((host, int(port)))
    return sock


def ferry_with(run_ferry, broker, topic, tmp_path, server=None, **over):
    """ferry with table t of topic, its settings in over, and server settings."""
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s", **over)],
                         server=server or {}))
    f.wait_ready(60)
    return f


def apply_events(state, events):
    """A client's view: reset forgets, put sets, delete removes."""
    for e in events:
        if e["event"] == "reset":
            state.clear()
        elif e["event"] == "put":
            state[e["data"]["key"]] = e["data"]["value"]
        elif e["event"] == "delete":
            state.pop(e["data"]["key"], None)
    return state


def test_key_state_first_then_changes_in_order(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    [first] = put(broker, topic, [("AAPL", '{"price": 1,\n "currency": "USD"}')])
    f = ferry_with(run_ferry, broker, topic, tmp_path)
    s = Stream(f, "/tables/t/keys/AAPL/events")
    try:
        assert s.status == 200
        assert s.headers["content-type"] == "text/event-stream"
        assert s.headers["cache-control"] == "no-cache"
        state = s.state()
        assert [e["event"] for e in state] == ["put", "sync"]
        assert state[0]["id"] == event_id(first.partition(), first.offset(), first.value())
        assert state[0]["data"] == {"key": "AAPL", "value": {"price": 1, "currency": "USD"},
                                    "partition": first.partition(), "offset": first.offset()}
        assert state[1]["data"] == {"keys": 1}
        # one change at a time: each arrives, with its record's id
        for i in range(2, 5):
            [m] = put(broker, topic, [("AAPL", f'{{"price": {i}}}')])
            [e] = s.events(is_event("put"))
            assert e["id"] == event_id(m.partition(), m.offset(), m.value())
            assert e["data"]["value"] == {"price": i}
        # a burst: maybe conflated, never backwards, ending at the last value
        msgs = put(broker, topic, [("AAPL", f'{{"price": {i}}}') for i in range(5, 55)] +
                   [("MSFT", "other key")])
        got = s.events(lambda e: e["data"]["value"] == {"price": 54})
        offsets = [e["data"]["offset"] for e in got]
        assert offsets == sorted(set(offsets)), offsets
        assert all(e["data"]["key"] == "AAPL" for e in got)
        [last] = [m for m in msgs if m.value() == b'{"price": 54}']
        assert got[-1]["id"] == event_id(last.partition(), last.offset(), last.value())
        # a tombstone is a delete event with its own id; a new value comes after it
        [tomb] = put(broker, topic, [("AAPL", None)])
        [e] = s.events(is_event("delete"))
        assert e["id"] == event_id(tomb.partition(), tomb.offset(), None)
        assert e["data"] == {"key": "AAPL", "partition": tomb.partition(),
                             "offset": tomb.offset()}
        put(broker, topic, [("AAPL", "back, not JSON")])
        [e] = s.events(is_event("put"))
        assert base64.b64decode(e["data"]["value"]) == b"back, not JSON"
        assert e["data"]["value_encoding"] == "base64"
    finally:
        s.close()


def test_prefix_state_then_changes(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    put(broker, topic, [(f"user:{i:03d}", str(i)) for i in range(600)] + [("other", "x")])
    # a queue of 200: the state goes out in pages of 100 rows while changes are committed
    f = ferry_with(run_ferry, broker, topic, tmp_path, limits={"subscriber_queue": 200})
    s = Stream(f, "/tables/t/events?prefix=user:", timeout=30)
    try:
        assert s.status == 200
        truth = {f"user:{i:03d}": i for i in range(600)}
        changes = [(f"user:{i:03d}", str(1000 + i)) for i in range(0, 600, 7)]
        changes += [("user:new", "1"), ("user:005", None), ("other", "y")]
        put(broker, topic, changes)
        for k, v in changes:
            if k.startswith("user:") and v is None:
                truth.pop(k)
            elif k.startswith("user:"):
                truth[k] = int(v)
        state = s.state(timeout=60)
        assert 599 <= state[-1]["data"]["keys"] <= 601
        view = apply_events({}, state)
        # the changes committed during the state are in it, or follow it in commit order
        last, deadline = {}, time.monotonic() + 30
        while view != truth:
            e = s.next(deadline - time.monotonic())
            assert e is not None
            if "comment" in e:
                continue
            assert "partition" in e["data"], (e, view == truth, len(view), len(truth))
            p, o = e["data"]["partition"], e["data"]["offset"]
            assert o > last.get(p, -1), (e, last)
            last[p] = o
            apply_events(view, [e])
    finally:
        s.close()


def test_changes_of_many_keys_follow_commit_order(broker30, run_ferry, tmp_path):
    """Bursts larger than the subscriber's queue: it takes them as it reads, in commit order,
    and is not dropped."""
    broker, topic = broker30
    f = ferry_with(run_ferry, broker, topic, tmp_path, limits={"subscriber_queue": 10})
    s = Stream(f, "/tables/t/events")
    try:
        assert s.state()[-1] == {"event": "sync", "data": {"keys": 0}}
        records = [(f"k{i % 40}", str(i)) for i in range(2000)]
        put(broker, topic, records)
        final = dict(records)
        seen, last = {}, {}

        def done(e):
            d = e["data"]
            p, o = d["partition"], d["offset"]
            assert o > last.get(p, -1), f"partition {p} went from {last.get(p)} to {o}"
            last[p] = o
            seen[d["key"]] = str(d["value"])
            return seen == final

        s.events(done, timeout=60)
        assert metric(f, "ferry_table_events_sent_total", table="t") >= 40
        assert metric(f, "ferry_table_subscribers_dropped_total", table="t") == 0
    finally:
        s.close()


def test_resume_with_last_event_id_loses_nothing(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    put(broker, topic, [("p:a", "1"), ("p:b", "1"), ("p:c", "1"), ("q", "1")])
    f = ferry_with(run_ferry, broker, topic, tmp_path)
    # a prefix: the state, one change, then gone
    s = Stream(f, "/tables/t/events?prefix=p:")
    view = apply_events({}, s.state())
    assert view == {"p:a": 1, "p:b": 1, "p:c": 1}
    put(broker, topic, [("p:a", "2")])
    view = apply_events(view, s.events(is_event("put", "p:a")))
    last_id = s.last_id
    s.close()
    # while away: a change, a new key, a delete
    put(broker, topic, [("p:b", "3"), ("p:d", "1"), ("p:c", None)])
    wait_until(lambda: f.get("/tables/t/keys/p:c").status == 404, 30, "the delete")
    s = Stream(f, "/tables/t/events?prefix=p:", headers={"Last-Event-ID": last_id})
    try:
        state = s.state()
        assert state[0]["event"] == "reset" and state[0]["data"]["reason"] == "resume"
        view = apply_events(view, state)
        assert view == {"p:a": 2, "p:b": 3, "p:d": 1}
        put(broker, topic, [("p:d", "2")])
        assert apply_events(view, s.events(is_event("put", "p:d"))) == {"p:a": 2, "p:b": 3,
                                                                        "p:d": 2}
    finally:
        s.close()
    # a prefix compares no id: any id that parses is a resume (the form of before the hash
    # too), anything else starts afresh, without a reset
    for other, first in (("0:5", "reset"), ("0:5-0badf00d", "reset"), ("garbage", "put"),
                         ("0:5-0BADF00D", "put")):
        s = Stream(f, "/tables/t/events?prefix=p:", headers={"Last-Event-ID": other})
        state = s.state()
        s.close()
        assert state[0]["event"] == first, (other, state)
        assert apply_events({}, state) == {"p:a": 2, "p:b": 3, "p:d": 2}


def test_key_resume_sends_only_what_changed(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    [m] = put(broker, topic, [("K", "1")])
    f = ferry_with(run_ferry, broker, topic, tmp_path)
    row_id = event_id(m.partition(), m.offset(), "1")
    path = "/tables/t/keys/K/events"
    # resuming at the current row: nothing to resend
    s = Stream(f, path, headers={"Last-Event-ID": row_id})
    assert [e["event"] for e in s.state()] == ["sync"]
    s.close()
    # the same place with another value's hash, or the id of before the hash: the row again
    for other in (event_id(m.partition(), m.offset(), "2"), f"{m.partition()}:{m.offset()}"):
        s = Stream(f, path, headers={"Last-Event-ID": other})
        assert [(e["event"], e.get("id")) for e in s.state()] == [("put", row_id), ("sync", None)]
        s.close()
    # changed while away: the new row
    [m2] = put(broker, topic, [("K", "2")])
    wait_until(lambda: f.get("/tables/t/keys/K").body == b"2", 30, "the change")
    s = Stream(f, path, headers={"Last-Event-ID": row_id})
    state = s.state()
    assert [e["event"] for e in state] == ["put", "sync"]
    assert state[0]["id"] == event_id(m2.partition(), m2.offset(), "2")
    assert state[0]["data"]["value"] == 2
    s.close()
    # deleted while away: a delete without an id
    put(broker, topic, [("K", None)])
    wait_until(lambda: f.get("/tables/t/keys/K").status == 404, 30, "the delete")
    s = Stream(f, path, headers={"Last-Event-ID": event_id(m2.partition(), m2.offset(), "2")})
    try:
        state = s.state()
        assert [e["event"] for e in state] == ["delete", "sync"]
        assert "id" not in state[0] and state[0]["data"] == {"key": "K"}
        assert state[1]["data"] == {"keys": 0}
    finally:
        s.close()


def test_a_batch_too_large_to_list_resends_the_states(broker30, run_ferry, tmp_path):
    """Over 4 MiB of keys in one write transaction: the changes are not listed, so a key
    subscription sends its key's new row and a prefix subscription its whole state again."""
    broker, topic = broker30
    put(broker, topic, [("K", "0")])
    # one write transaction takes every record that comes within 5 s, unless the table catches
    # up with the producer before the last one (then it commits what it has): see below
    f = ferry_with(run_ferry, broker, topic, tmp_path, apply_interval="5s")
    p = Stream(f, "/tables/t/events?prefix=L", timeout=30)
    k = Stream(f, "/tables/t/keys/K/events", timeout=30)
    try:
        p.state()
        k.state()
        commits = metric(f, "ferry_table_apply_batch_seconds_count", table="t")
        want = {f"L{i:03d}" + "x" * 60000: i for i in range(200)}
        put(broker, topic, [(key, str(i)) for key, i in want.items()] + [("K", "1")])
        events = p.state(timeout=60)
        resync = [i for i, e in enumerate(events) if e["event"] == "reset"]
        assert resync and events[resync[0]]["data"]["reason"] == "resync", events[:3]
        view = apply_events({}, events)
        assert events[-1]["data"] == {"keys": len(view)}
        [e] = k.events(is_event("put"), timeout=30)
        assert e["data"]["value"] == 1
        # timed just after the commit the streams saw
        wait_until(lambda: metric(f, "ferry_table_apply_batch_seconds_count", table="t") > commits,
                   10, "the transaction's timing")
        if metric(f, "ferry_table_apply_batch_seconds_count", table="t") == commits + 1:
            # the usual case, one transaction: its whole state, nothing listed before it
            assert resync == [0] and view == want, (resync, len(view))
        else:
            # on a busy machine, several: the state of the one too large to list, and the
            # changes of the others (listed, or resent too), before or after it
            deadline = time.monotonic() + 60
            while view != want:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(view)} of the 200 keys"
                e = p.next(left)
                assert e is not None, f"the stream ended at {len(view)} of the 200 keys"
                if "comment" not in e:
                    apply_events(view, [e])
    finally:
        p.close()
        k.close()


def test_a_transaction_short_of_disk_room_lists_its_changes(broker30, run_ferry, tmp_path):
    """A volume short of the room a transaction reserves: the transaction commits the records it
    has written and goes on in a new one. Each part lists its changes, so a subscriber gets them
    as events, not its whole state again. (Every part made every subscription resend its state,
    and woke every read waiting on a key.)"""
    broker, topic = broker30
    env, _ = no_space_env(tmp_path)
    env["FERRY_TEST_FILE_LIMIT"] = str(2 * 1024 * 1024)  # data.mdb's blocks: room for a few parts
    put(broker, topic, [("L000", "0")])
    # one transaction takes the whole burst below; it reserves far more than 2 MiB
    f = run_ferry(config(broker.bootstrap, [table("t", topic, tmp_path / "s",
                                                  apply_interval="2s")]), env=env)
    f.wait_ready(60)
    p = Stream(f, "/tables/t/events?prefix=L", timeout=30)
    try:
        view = apply_events({}, p.state())
        assert view == {"L000": 0}, view
        want = {f"L{i:03d}": i for i in range(300)}
        put(broker, topic, [(key, str(i)) for key, i in want.items()])
        events = []
        deadline = time.monotonic() + 60
        while view != want:
            left = deadline - time.monotonic()
            assert left > 0, f"{len(view)} of the 300 keys; {f.describe()}"
            e = p.next(left)
            assert e is not None, f"the stream ended at {len(view)} of the 300 keys"
            if "comment" not in e:
                events.append(e)
                apply_events(view, [e])
        assert [e for e in events if e["event"] != "put"] == [], events[:3]
        log = f.stderr_text()
        assert "short of the room a transaction reserves" in log, f.describe()
        assert "no disk space" not in log, f.describe()
    finally:
        p.close()


def test_slow_subscriber_is_told_why_and_disconnected(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    # a full queue for half of connection_timeout (5 s) is too slow: told before the server
    # would close the connection without a word (10 s)
    f = ferry_with(run_ferry, broker, topic, tmp_path, limits={"subscriber_queue": 2},
                   server={"connection_timeout": "10s"})
    sock = small_window_socket(f)
    try:
        sock.sendall(b"GET /tables/t/events HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until(lambda: metric(f, "ferry_table_subscribers", table="t") == 1, 30,
                   "the subscription")
        value = "v" * 60000
        for batch in range(10):  # stop producing as soon as the subscriber is dropped
            put(broker, topic, [(f"k{batch}-{i}", value) for i in range(40)])
            if metric(f, "ferry_table_subscribers_dropped_total", table="t"):
                break
        wait_until(lambda: metric(f, "ferry_table_subscribers_dropped_total", table="t") == 1,
                   60, "the slow subscriber to be dropped")
        # the gauge goes down just after the drop is counted
        wait_until(lambda: metric(f, "ferry_table_subscribers", table="t") == 0, 10,
                   "the dropped subscriber to be gone")
        # what it had not read is still delivered, then the reason, then the end of the body
        sock.settimeout(30)
        got = bytearray()
        while not got.endswith(b"\r\n0\r\n\r\n"):
            chunk = sock.recv(1 << 20)
            assert chunk, "the connection closed before the end of the body"
            got += chunk
        tail = bytes(got[-2000:]).decode(errors="replace")
        assert "event: error" in tail and '"reason":"slow_subscriber"' in tail, tail
        assert "limits.subscriber_queue" in tail and "stayed full" in tail
    finally:
        sock.close()


def test_head_answers_as_a_get_would_and_subscribes_nothing(broker30, run_ferry, tmp_path):
    """HEAD gets a GET's status and headers, and no stream: no subscriber is made, so nothing
    is read from the table or sent for it."""
    broker, topic = broker30
    put(broker, topic, [("AAPL", "1")])
    f = ferry_with(run_ferry, broker, topic, tmp_path, limits={"max_subscribers": 1})
    for _ in range(10):
        r = f.request("HEAD", "/tables/t/keys/AAPL/events")
        assert r.status == 200 and r.body == b""
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["cache-control"] == "no-cache"
    s = Stream(f, "/tables/t/keys/AAPL/events")
    try:
        assert [e["event"] for e in s.state()] == ["put", "sync"]
        # only this stream's two events were ever written
        assert metric(f, "ferry_table_events_sent_total", table="t") == 1  # its put
        r = f.request("HEAD", "/tables/t/events?prefix=A")  # the only slot is taken, as for GET
        assert r.status == 429 and r.headers["retry-after"] == "1"
    finally:
        s.close()


def test_a_client_that_reads_slowly_is_not_dropped(broker30, run_ferry, tmp_path):
    """A full queue whose client keeps reading is not a slow subscriber, however long the
    client takes to drain it: only a client that takes nothing for half of connection_timeout
    is. Here a queue of 40 events of 60 KB waits for a client reading about 200 KB/s: 12 s to
    drain it against a stall limit of 5 s, while the server sees the client take something
    every second or two."""
    broker, topic = broker30
    f = ferry_with(run_ferry, broker, topic, tmp_path, limits={"subscriber_queue": 40},
                   server={"connection_timeout": "10s"})
    sock = small_window_socket(f)
    got = bytearray()

    def read_until(done, pace=None, seconds=None):
        deadline = time.monotonic() + (seconds or 60)
        while not done() and time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(10000 if pace else 1 << 20)
            except socket.timeout:
                break
            assert chunk, "the connection closed"
            got.extend(chunk)
            if pace:
                time.sleep(pace)  # the slow client's pace: 10 KB per read, 20 reads a second
        return done()

    def body():
        """The chunked body's complete chunks, joined."""
        out, at = bytearray(), got.find(b"\r\n\r\n") + 4
        while (eol := got.find(b"\r\n", at)) > 0:
            size = int(got[at:eol], 16)
            if eol + 2 + size > len(got):
                break
            out += got[eol + 2:eol + 2 + size]
            at = eol + 4 + size
        return bytes(out)

    try:
        sock.sendall(b"GET /tables/t/events HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_until(lambda: b"event: sync" in body())
        value = "v" * 60000
        n = 80  # 4.8 MB: more than the queue's 2.4 MB and the sockets' buffers
        put(broker, topic, [(f"k{i:03d}", value) for i in range(n)])
        wait_until(lambda: metric(f, "ferry_table_events_sent_total", table="t") >= 40, 30,
                   "the queue to fill")
        read_until(lambda: b"slow_subscriber" in got, pace=0.05, seconds=12)
        assert b"slow_subscriber" not in body()
        assert metric(f, "ferry_table_subscribers_dropped_total", table="t") == 0
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # the rest at full speed
        assert read_until(lambda: body().count(b"event: put") == n), body().count(b"event: put")
        assert b"slow_subscriber" not in body()
    finally:
        sock.close()


def test_max_subscribers_answers_429(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    # heartbeats every second (connection_timeout / 2) find a client that left
    f = ferry_with(run_ferry, broker, topic, tmp_path, limits={"max_subscribers": 2},
                   server={"connection_timeout": "2s"})
    a = Stream(f, "/tables/t/events")
    b = Stream(f, "/tables/t/keys/x/events")
    try:
        assert a.status == 200 and b.status == 200
        r = f.get("/tables/t/events?prefix=z")
        assert r.status == 429 and r.headers["retry-after"] == "1"
        assert "max_subscribers" in r.json()["message"]
        a.close()
        # the slot frees when the server notices the client left (a heartbeat finds it)
        wait_until(lambda: metric(f, "ferry_table_subscribers", table="t") == 1, 30,
                   "the closed subscription to be noticed")
        c = Stream(f, "/tables/t/events?prefix=z")
        assert c.status == 200
        c.close()
    finally:
        b.close()


def test_bad_subscriptions(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    put(broker, topic, [(b"\x00\xffbin", "1")])
    f = ferry_with(run_ferry, broker, topic, tmp_path, limits={"max_key": "16B"})
    cases = [
        ("/tables/t/events?color=red", 400, "unknown query parameter 'color'"),
        ("/tables/t/keys/a/events?prefix=a", 400, "unknown query parameter 'prefix'"),
        ("/tables/t/events?prefix=!!&key_format=base64", 400, "prefix: not base64"),
        ("/tables/t/keys/" + "k" * 17 + "/events", 400, "longer than limits.max_key (16)"),
        ("/tables/t/events?key_format=hex", 400, "key_format: expected raw or base64"),
        ("/tables/nope/events", 404, "no table named 'nope'"),
        ("/tables/t/events?prefix=a&prefix=b", 400, "'prefix' is given more than once"),
        ("/tables/t/keys/a/events?key_format", 400, "'key_format' needs a value"),
    ]
    for path, status, message in cases:
        r = f.get(path)
        assert r.status == status, (path, r.status, r.text)
        assert message in r.json()["message"], (path, r.text)
    b64 = base64.urlsafe_b64encode(b"\x00\xffbin").decode().rstrip("=")
    s = Stream(f, f"/tables/t/keys/{b64}/events?key_format=base64")
    try:
        [e, sync] = s.state()
        assert base64.b64decode(e["data"]["key"]) == b"\x00\xffbin"
        assert e["data"]["key_encoding"] == "base64" and sync["data"] == {"keys": 1}
    finally:
        s.close()
    s = Stream(f, "/tables/t/events?prefix=" + quote(base64.b64encode(b"\x00").decode(), safe="")
               + "&key_format=base64")
    try:
        assert s.state()[-1]["data"] == {"keys": 1}
    finally:
        s.close()
    # a NUL in a prefix sent as it is (%00) is part of the prefix, not its end
    for prefix, keys in (("%00%FFbin", 1), ("%00%FFbim", 0), ("%00x", 0)):
        s = Stream(f, f"/tables/t/events?prefix={prefix}")
        try:
            assert s.state()[-1]["data"] == {"keys": keys}, prefix
        finally:
            s.close()


def test_heartbeats_keep_an_idle_stream_open(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    # heartbeats every second (half the connection timeout): one late by up to a second on a
    # busy machine still comes before the server would close the idle connection
    f = ferry_with(run_ferry, broker, topic, tmp_path, server={"connection_timeout": "2s"})
    s = Stream(f, "/tables/t/keys/K/events")
    try:
        s.state()
        started, beats = time.monotonic(), 0
        while time.monotonic() - started < 6.0:  # three times the connection timeout
            e = s.next(timeout=10)
            assert e is not None, "the idle stream was closed"
            beats += e.get("comment") == "keepalive"
        assert beats >= 3, beats
        put(broker, topic, [("K", "1")])
        assert s.events(is_event("put"))[-1]["data"]["value"] == 1
    finally:
        s.close()


def test_shutdown_ends_every_stream(broker30, run_ferry, tmp_path):
    broker, topic = broker30
    put(broker, topic, [("K", "1")])
    f = ferry_with(run_ferry, broker, topic, tmp_path)
    streams = [Stream(f, "/tables/t/keys/K/events"), Stream(f, "/tables/t/events")]
    try:
        for s in streams:
            s.state()
        f.stop()
        for s in streams:
            [e] = s.events(is_event("shutdown"))
            assert e["data"]["reason"] == "shutdown"
            assert s.next(timeout=30) is None  # the end of the stream
        assert f.returncode() == 0
    finally:
        for s in streams:
            s.close()


def test_head_of_a_subscription_keeps_the_connection_right(broker30, run_ferry, tmp_path):
    # HEAD on an events stream is answered without a body on a kept-alive connection: the
    # next request on it gets its own answer, with no stray bytes before it.
    broker, topic = broker30
    f = ferry_with(run_ferry, broker, topic, tmp_path)
    for path in ("/tables/t/events", "/tables/t/keys/a/events"):
        with socket.create_connection((f.host, f.port), timeout=10) as s:
            s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            got = b""
            while chunk := s.recv(65536):  # ferry closes after the second answer
                got += chunk
        head, rest = got.split(b"\r\n\r\n", 1)
        head = head.decode().lower()
        assert head.startswith("http/1.1 200"), got[:200]
        assert "content-type: text/event-stream" in head and "connection: close" not in head, head
        assert rest.startswith(b"HTTP/1.1 200"), got
    assert metric(f, "ferry_table_subscribers", table="t") == 0
