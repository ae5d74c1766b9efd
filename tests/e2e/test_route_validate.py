"""Validation before sending (`validate:` in a route): records that match the JSON Schema reach
the receiver; every kind of failure is dead-lettered with the JSON Pointer and the rule in
ferry.error and never sent; the Confluent wire-format prefix is checked against the allowed
schema ids and stripped; `ferry check` reads the schema relative to the config file and names
a bad one.
"""
import json
import struct
import textwrap

from ferrytest import Reply, route_config, route_metric, run_cli, unique, wait_route_metric

SCHEMA = {
    "type": "object",
    "required": ["id", "user"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "minimum": 1, "maximum": 999},
        "kind": {"enum": ["a", "b"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "user": {
            "type": "object",
            "required": ["email"],
            "properties": {"email": {"type": "string", "minLength": 3,
                                     "pattern": "^[a-z@.]+$"}},
        },
    },
}

VALID = [
    {"id": 1, "user": {"email": "a@b.c"}},
    {"id": 2, "kind": "b", "tags": ["x"], "user": {"email": "abc"}},
]

# key -> (value, the reason ferry.error must carry)
INVALID = {
    "type": ({"id": "7", "user": {"email": "a@b.c"}}, "json schema: /id: type integer"),
    "required": ({"id": 3, "user": {}}, "json schema: /user: required email"),
    "minlength": ({"id": 3, "user": {"email": "ab"}}, "json schema: /user/email: minLength 3"),
    "pattern": ({"id": 3, "user": {"email": "A@B.C"}},
                "json schema: /user/email: pattern ^[a-z@.]+$"),
    "enum": ({"id": 3, "kind": "z", "user": {"email": "abc"}}, "json schema: /kind: enum"),
    "additional": ({"id": 3, "extra": 1, "user": {"email": "abc"}},
                   "json schema: /extra: additionalProperties false"),
    "maximum": ({"id": 1000, "user": {"email": "abc"}}, "json schema: /id: maximum 999"),
    "items": ({"id": 3, "tags": ["a", 1], "user": {"email": "abc"}},
              "json schema: /tags/1: type string"),
    "maxitems": ({"id": 3, "tags": ["a", "b", "c", "d"], "user": {"email": "abc"}},
                 "json schema: /tags: maxItems 3"),
    "root": ([1], "json schema: (root): type object"),
}


def dead_letters_by_key(kafka, dlq, n):
    return {r.key.decode(): r for r in kafka.consume_n(dlq, n, use_group=False)}


def test_invalid_records_are_dead_lettered_with_their_pointer(start_routes, receiver, kafka,
                                                              tmp_path):
    topic, dlq = unique("val"), unique("val-dlq")
    (tmp_path / "orders.schema.json").write_text(json.dumps(SCHEMA))
    f = start_routes(route_config("val", [topic], receiver.url + "/x/${key}",
                                  validate={"json_schema": "orders.schema.json"},
                                  dead_letter={"topic": dlq}))
    records = [{"partition": 0, "key": b"ok0", "value": json.dumps(VALID[0]).encode()}]
    records += [{"partition": 0, "key": k.encode(), "value": json.dumps(v).encode()}
                for k, (v, _) in INVALID.items()]
    records.append({"partition": 0, "key": b"notjson", "value": b"{not json"})
    records.append({"partition": 0, "key": b"tombstone", "value": None})
    records.append({"partition": 0, "key": b"ok1", "value": json.dumps(VALID[1]).encode()})
    kafka.produce(topic, records)

    dead = dead_letters_by_key(kafka, dlq, len(INVALID) + 2)
    wait_route_metric(f, "ferry_route_records_delivered_total", "val", len(VALID))
    # the dead-letter counter moves when ferry collects the producer's report, which may come
    # after a consumer could read the record
    m = wait_route_metric(f, "ferry_route_records_dead_lettered_total", "val", len(INVALID) + 2)

    assert route_metric(m, "ferry_route_records_invalid_total", "val") == len(INVALID) + 2
    assert route_metric(m, "ferry_route_records_dead_lettered_total", "val") == len(INVALID) + 2
    assert sorted(r.path for r in receiver.requests) == ["/x/ok0", "/x/ok1"]
    assert [json.loads(r.body) for r in sorted(receiver.requests, key=lambda r: r.path)] == VALID
    for key, (value, reason) in INVALID.items():
        h = dict(dead[key].headers)
        assert h["ferry.error"].decode() == reason, key
        assert h["ferry.attempts"] == b"0"
        assert "ferry.http_status" not in h
        assert json.loads(dead[key].value) == value
    assert dict(dead["notjson"].headers)["ferry.error"].startswith(
        b"json schema: (root): not JSON")
    assert dead["notjson"].value == b"{not json"
    assert dict(dead["tombstone"].headers)["ferry.error"] == \
        b"json schema: (root): not JSON (no value)"
    assert dead["tombstone"].value is None


def wire(schema_id, payload, magic=0):
    return struct.pack(">bI", magic, schema_id) + payload


def test_wire_format_prefix_is_checked_and_stripped(start_routes, receiver, kafka, tmp_path,
                                                    ferry_bin):
    topic, dlq = unique("wire"), unique("wire-dlq")
    (tmp_path / "wire.schema.json").write_text(json.dumps(SCHEMA))
    receiver.push(Reply(status=400, body=b"no"), path="/w/refused")
    f = start_routes(route_config(
        "wire", [topic], receiver.url + "/w/${key}",
        validate={"json_schema": str(tmp_path / "wire.schema.json"),
                  "confluent": {"schema_ids": ["7", "4294967295"], "strip": True}},
        dead_letter={"topic": dlq}))
    good = json.dumps(VALID[0]).encode()
    records = [
        ("ok7", wire(7, good)),
        ("okmax", wire(4294967295, good)),
        ("badid", wire(9, good)),
        ("magic", wire(7, good, magic=1)),
        ("short", b"\0\0\0"),
        ("plain", good),
        ("badjson", wire(7, b'{"id":"x","user":{"email":"abc"}}')),
        ("refused", wire(7, good)),  # valid, but the receiver answers 400
        ("last", wire(7, good)),
    ]
    kafka.produce(topic, [{"partition": 0, "key": k.encode(), "value": v} for k, v in records])

    dead = dead_letters_by_key(kafka, dlq, 6)
    m = wait_route_metric(f, "ferry_route_records_delivered_total", "wire", 3)

    assert route_metric(m, "ferry_route_records_invalid_total", "wire") == 5
    sent = {r.path: r.body for r in receiver.requests}
    assert sent == {"/w/ok7": good, "/w/okmax": good, "/w/refused": good, "/w/last": good}
    reasons = {k: dict(r.headers)["ferry.error"].decode() for k, r in dead.items()}
    assert reasons == {
        "badid": "wire format: schema id 9 not allowed",
        "magic": "wire format: magic byte 1, expected 0",
        "short": "wire format: shorter than the 5-byte prefix",
        "plain": "wire format: magic byte 123, expected 0",
        "badjson": "json schema: /id: type integer",
        "refused": "http status 400",
    }
    values = dict(records)
    for key, rec in dead.items():
        assert rec.value == values[key], key  # the dead letter keeps the record as consumed

    # redriven, a dead letter goes through the route's validation again: the refused one is
    # sent stripped, as it was the first time; the invalid ones fail again and stay
    f.stop()
    receiver.clear()
    res = run_cli(ferry_bin, ["redrive", "-c", f.config_path, "--route", "wire"], cwd=f.workdir)
    assert res.returncode == 4, res.stdout + res.stderr  # done, some failed again
    assert "read 6, redriven 1, skipped by filter 0, failed again 5" in res.stdout, res.stdout
    assert "fails the route's validation: wire format: schema id 9 not allowed" in res.stdout
    assert {r.path: r.body for r in receiver.requests} == {"/w/refused": good}


def check(ferry_bin, cwd, config):
    return run_cli(ferry_bin, ["check", "-c", config], cwd=cwd)


def write_config(path, validate, dead_letter="  dead_letter: {topic: dlq}\n"):
    path.write_text(textwrap.dedent("""\
        kafka: {brokers: 127.0.0.1:9092}
        routes:
        - name: v
          topics: [t]
          target: {url: "http://127.0.0.1:1/x"}
        """) + dead_letter + "  validate: " + validate + "\n")


def test_check_reads_the_schema_next_to_the_config(ferry_bin, tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "s.json").write_text(json.dumps(SCHEMA))
    write_config(conf / "ferry.yaml", "{json_schema: s.json}")
    res = check(ferry_bin, tmp_path, "conf/ferry.yaml")  # run from elsewhere
    assert res.returncode == 0, res.stderr

    (conf / "s.json").write_text('{"properties": {"a": {"minLength": "3"}}}')
    res = check(ferry_bin, tmp_path, "conf/ferry.yaml")
    assert res.returncode != 0
    assert "routes[0].validate" in res.stderr
    assert "json_schema: 'conf/s.json': /properties/a/minLength: expected a non-negative " \
           "integer" in res.stderr, res.stderr

    (conf / "s.json").write_text('{"anyOf": [{"type": "string"}]}')
    res = check(ferry_bin, tmp_path, "conf/ferry.yaml")
    assert "/anyOf: keyword not supported" in res.stderr, res.stderr

    (conf / "s.json").write_text('{"pattern": "a(b"}')
    res = check(ferry_bin, tmp_path, "conf/ferry.yaml")
    assert "/pattern: not a POSIX extended regular expression" in res.stderr, res.stderr


def test_check_refuses_bad_validate_settings(ferry_bin, tmp_path):
    cases = [
        ("{json_schema: missing.json}", "cannot open '", "  dead_letter: {topic: dlq}\n"),
        ("{confluent: {schema_ids: [1]}}", "needs dead_letter.topic", ""),
        ("{confluent: {schema_ids: [x]}}", "expected a schema id from 0 to 4294967295, got 'x'",
         "  dead_letter: {topic: dlq}\n"),
        ("{confluent: {schema_ids: [4294967296]}}", "expected a schema id",
         "  dead_letter: {topic: dlq}\n"),
        ("{confluent: {strip: true}}", "strip: needs schema_ids", "  dead_letter: {topic: dlq}\n"),
    ]
    for validate, want, dead_letter in cases:
        write_config(tmp_path / "f.yaml", validate, dead_letter)
        res = check(ferry_bin, tmp_path, "f.yaml")
        assert res.returncode != 0, validate
        assert want in res.stderr, (validate, res.stderr)
