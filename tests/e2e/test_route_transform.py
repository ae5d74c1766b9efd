"""Transformation: `body.mode: json_template` builds each request body as JSON from a template
whose variables are filled with JSON values (docs/routes.md, "Transformation").

The receiver parses every body, so a body that is not JSON, or a value with the wrong type or
a wrong escape, fails the comparison. Records the template cannot fill go to the dead-letter
topic with the path in the reason, or render null with `missing: null`.
"""
import json
import re
import textwrap

from ferrytest import route_config, run_cli, unique, wait_delivered

# Unquoted variables keep the JSON type of what they find; quoted ones become text in a string.
TEMPLATE = """\
{
  "id": ${value.user.id},
  "email": ${value.user.email},
  "tags": ${value.tags},
  "address": ${value.user.address},
  "vip": ${value.vip},
  "note": ${value.note},
  "score": ${value.score},
  "first_tag": ${value.tags.0},
  "ref": "order-${value.user.id}",
  "source": {"topic": ${topic}, "partition": ${partition}, "offset": ${offset}},
  "key": ${key},
  "trace": ${header.trace}
}
"""


def user_value(i):
    """A nested record value whose strings need escaping: quotes, backslashes, control
    characters and non-ASCII text."""
    return {
        "user": {"id": i, "email": f'u{i}"q\\b\t@ex\u00e4mple.com\u2603',
                 "address": {"city": "K\u00f6ln", "lines": ["a", {"n": None}]}},
        "tags": [f"t{i}", "x\ny", 1.5],
        "vip": i % 2 == 0,
        "note": None,
        "score": -i * 1000000007,
        "ignored": "x" * 100,
    }


def expected_body(i, topic, partition, offset):
    v = user_value(i)
    return {
        "id": i, "email": v["user"]["email"], "tags": v["tags"],
        "address": v["user"]["address"], "vip": v["vip"], "note": None, "score": v["score"],
        "first_tag": f"t{i}", "ref": f"order-{i}",
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "key": f"k{i}", "trace": f"tr-\"{i}\"",
    }


def test_json_template_renders_nested_values_as_json(start_routes, receiver, kafka):
    topic = unique("xform")
    records = [{"key": f"k{i}".encode(), "value": json.dumps(user_value(i)).encode(),
                "headers": [("trace", f'tr-"{i}"'.encode())]} for i in range(40)]
    f = start_routes(route_config("xform", [topic], receiver.url + "/users",
                                  body={"mode": "json_template", "template": TEMPLATE}))
    delivered = kafka.produce(topic, records)
    receiver.wait_for(len(records))
    wait_delivered(f, "xform", len(records))

    where = {m.key(): (m.partition(), m.offset()) for m in delivered}
    bodies = {}
    for req in receiver.requests:
        assert req.header("content-type") == "application/json"
        b = json.loads(req.body)
        bodies[b["id"]] = b
    assert sorted(bodies) == list(range(len(records)))
    for i, b in bodies.items():
        assert b == expected_body(i, topic, *where[f"k{i}".encode()])


def test_json_template_in_batches(start_routes, receiver, kafka):
    topic = unique("xform-batch")
    n = 30
    records = [{"partition": 0, "key": f"k{i}".encode(),
                "value": json.dumps({"user": {"id": i, "name": f'n"{i}'}}).encode()}
               for i in range(n)]
    kafka.produce(topic, records)  # all waiting before the route joins: batches fill up
    f = start_routes(route_config(
        "xb", [topic], receiver.url + "/batch",
        body={"mode": "json_template", "template": '{"id": ${value.user.id},\n "name": ${value.user.name}}'},
        batch={"max_records": 8, "format": "ndjson"}))
    wait_delivered(f, "xb", n)

    got = []
    for req in receiver.requests:
        assert req.header("content-type") == "application/x-ndjson"
        lines = req.body.decode().split("\n")
        assert lines[-1] == "", "ndjson ends each record with a newline"
        got += [json.loads(line) for line in lines[:-1]]
    assert len(receiver.requests) < n, "records went one per request, not in batches"
    assert sorted(got, key=lambda b: b["id"]) == [{"id": i, "name": f'n"{i}'} for i in range(n)]


def dead_letter_test(start_routes, receiver, kafka, missing):
    """Runs good records and bad ones through a route; returns (bodies by key, dead letters by
    key)."""
    topic, dlq = unique("xform-miss"), unique("xform-miss-dlq")
    good = {f"ok{i}".encode(): {"user": {"id": i, "email": f"u{i}@x"}} for i in range(5)}
    no_email = {b"noemail": {"user": {"id": 100}}, b"nouser": {"id": 101}}
    not_json = {b"notjson": b"hello, not json"}
    records = [{"partition": 0, "key": k, "value": json.dumps(v).encode()}
               for k, v in list(good.items()) + list(no_email.items())]
    records += [{"partition": 0, "key": k, "value": v} for k, v in not_json.items()]
    records.append({"partition": 0, "key": b"last", "value": b'{"user": {"id": 9, "email": ""}}'})
    # A configured Content-Type (a JSON subtype) wins over application/json.
    body = {"mode": "json_template", "missing": missing, "content_type": "application/vnd.x+json",
            "template": '{"id": ${value.user.id}, "email": ${value.user.email}}'}
    f = start_routes(route_config("xm", [topic], receiver.url + "/u", body=body,
                                  dead_letter={"topic": dlq}))
    kafka.produce(topic, records)
    n_dead = len(not_json) + (len(no_email) if missing == "error" else 0)
    dead = kafka.consume_n(dlq, n_dead, use_group=False) if n_dead else []
    wait_delivered(f, "xm", len(records) - n_dead)
    assert {r.header("content-type") for r in receiver.requests} == {"application/vnd.x+json"}
    bodies = {r.header("idempotency-key"): json.loads(r.body) for r in receiver.requests}
    return bodies, {d.key: dict(d.headers) for d in dead}


def test_a_missing_path_is_dead_lettered_with_the_path(start_routes, receiver, kafka):
    bodies, dead = dead_letter_test(start_routes, receiver, kafka, "error")

    assert sorted(b["id"] for b in bodies.values()) == [0, 1, 2, 3, 4, 9]
    assert set(dead) == {b"noemail", b"nouser", b"notjson"}
    assert dead[b"noemail"]["ferry.error"] == (
        b"template: '${value.user.email}': record value has nothing at 'user.email'")
    assert dead[b"nouser"]["ferry.error"] == (
        b"template: '${value.user.id}': record value has nothing at 'user'")
    assert dead[b"notjson"]["ferry.error"].startswith(
        b"template: '${value.user.id}': record value is not JSON: ")
    for h in dead.values():
        assert h["ferry.attempts"] == b"0" and "ferry.http_status" not in h


def test_missing_null_sends_null(start_routes, receiver, kafka):
    bodies, dead = dead_letter_test(start_routes, receiver, kafka, "null")

    assert set(dead) == {b"notjson"}, "a value that is not JSON is dead-lettered whatever missing says"
    by_id = {b["id"]: b for b in bodies.values()}
    assert sorted(by_id, key=lambda x: (x is None, x)) == [0, 1, 2, 3, 4, 9, 100, None]
    assert by_id[100] == {"id": 100, "email": None}
    assert by_id[None] == {"id": None, "email": None}
    assert by_id[2] == {"id": 2, "email": "u2@x"}


def test_a_template_that_is_not_json_is_a_config_error(ferry_bin, tmp_path):
    text = textwrap.dedent("""\
        kafka:
          dev: {brokers: 1}
        routes:
          - name: bad
            topics: [t]
            target: {url: "http://127.0.0.1:9/"}
            body:
              mode: json_template
              template: '{"id": ${value.id} ${key}}'
        """)
    path = tmp_path / "ferry.yaml"
    path.write_text(text)
    res = run_cli(ferry_bin, ["check", "-c", str(path)])

    assert res.returncode == 2, res.stderr
    errors = [l for l in res.stderr.splitlines() if l.startswith("config: ")]
    rx = re.compile(r"^config: routes\[0\]\.body\.template: template: not one JSON value once its "
                    r"variables are filled: .*null null.* \((?P<file>.+):(?P<line>\d+)\)$")
    m = [rx.match(l) for l in errors if rx.match(l)]
    assert m, res.stderr
    assert m[0].group("file") == str(path) and m[0].group("line") == "9", m[0].group(0)
