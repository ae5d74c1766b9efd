"""`ferry redrive`: a route's dead letters sent through the route again once its target is
fixed: each delivered once per run, an interrupted run resumed without resending, the
selection (--status, --from/--to, --since), --dry-run, and the errors of a bad command line.
"""
import re
import signal
import time

from ferrytest import Proc, Reply, run_cli, route_config, to_yaml, unique, wait_until


def dead_letter(start_routes, receiver, kafka, n, status_of=lambda key: 400, **route_over):
    """Runs a route whose target refuses every record with status_of(key), produces n keyed
    records (k0..), waits for their n dead letters and stops ferry. Returns (ferry, topic,
    dlq, dead letters)."""
    topic, dlq = unique("rd"), unique("rd-dlq")
    receiver.handler = lambda rec: Reply(status=status_of(rec.path.rsplit("/", 1)[-1]))
    f = start_routes(route_config("rd", [topic], receiver.url + "/in/${key}",
                                  dead_letter={"topic": dlq}, **route_over))
    kafka.produce(topic, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(n)])
    dead = kafka.consume_n(dlq, n, use_group=False)
    f.stop()
    receiver.handler = None
    receiver.default = Reply()
    receiver.clear()
    return f, topic, dlq, dead


def running_with_dead_letters(start_routes, receiver, kafka, n, keys=None):
    """Starts a route "rd" whose target refuses every record, with the given API keys (name:
    key, each allowed the route's topic), produces n keyed records (k0..) and waits for their
    n dead letters. ferry stays running; the receiver is cleared. Returns (ferry, topic)."""
    topic, dlq = unique("rd"), unique("rd-dlq")
    receiver.default = Reply(status=400)
    overrides = {"ingest": {"auth": {"keys": [
        {"name": name, "key": key, "topics": [topic]} for name, key in keys.items()]}}} if keys \
        else None
    f = start_routes(route_config("rd", [topic], receiver.url + "/in/${key}",
                                  dead_letter={"topic": dlq}), overrides=overrides)
    kafka.produce(topic, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(n)])
    kafka.consume_n(dlq, n, use_group=False)
    receiver.default = Reply()
    receiver.clear()
    return f, topic


def redrive(ferry_bin, f, *args, timeout=60):
    return run_cli(ferry_bin, ["redrive", "-c", f.config_path, "--route", "rd", *args],
                   timeout=timeout, cwd=f.workdir)


def summary(res):
    lines = [line for line in res.stdout.splitlines() if "redrive of route" in line]
    assert lines, res.stdout + res.stderr
    return lines[-1]


def keys(reqs):
    return sorted(r.path.rsplit("/", 1)[-1] for r in reqs)


def test_redrive_delivers_each_dead_letter_once_as_the_route_would(
        ferry_bin, start_routes, receiver, kafka):
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 8)
    res = redrive(ferry_bin, f)

    assert res.returncode == 0, res.stdout + res.stderr
    assert summary(res).endswith(
        "read 8, redriven 8, skipped by filter 0, failed again 0"), res.stdout
    reqs = receiver.requests
    assert keys(reqs) == [f"k{i}" for i in range(8)]
    for r in reqs:
        key = r.path.rsplit("/", 1)[-1]
        assert r.body == f"v{key[1:]}".encode()
        # the original record's coordinates, so the target can tell it is the same delivery
        assert r.headers["idempotency-key"].startswith(topic + "-"), r.headers
        assert not any(h.startswith("ferry.") for h in r.headers)

    # the same command again goes on after the finished run: nothing is sent twice, and
    # only dead letters written since are read
    again = redrive(ferry_bin, f)
    assert again.returncode == 0, again.stdout + again.stderr
    assert summary(again).endswith("(after the previous run): read 0, redriven 0, skipped by "
                                   "filter 0, failed again 0"), again.stdout
    assert len(receiver.requests) == 8

    # dead letters written since: the next run takes them, and only the route's own
    def written(route, key):
        return {"key": key, "value": b"later", "headers": [
            ("app", b"shop"), ("ferry.error", b"http status 400"), ("ferry.http_status", b"400"),
            ("ferry.topic", topic.encode()), ("ferry.partition", b"2"),
            ("ferry.offset", b"99"), ("ferry.route", route.encode())]}
    kafka.produce(dlq, [written("rd", b"k8"), written("other", b"k9")])
    res = redrive(ferry_bin, f)
    assert summary(res).endswith("read 2, redriven 1, skipped by filter 1, failed again 0")
    (later,) = receiver.requests[8:]
    assert later.path == "/in/k8" and later.body == b"later"
    assert later.headers["idempotency-key"] == f"{topic}-2-99"

    # a new run on purpose sends them all again
    res = redrive(ferry_bin, f, "--restart")
    assert res.returncode == 0 and "redriven 9" in summary(res)
    assert len(receiver.requests) == 18


def test_a_saved_run_past_the_topics_end_is_refused(ferry_bin, start_routes, receiver, kafka):
    """A saved run that got further in a partition than the dead-letter topic holds now (the
    topic was deleted and made again) is refused, not taken as done: going on from there would
    pass over the new topic's dead letters without a word. --restart reads them."""
    f = dead_letter(start_routes, receiver, kafka, 4)[0]
    assert redrive(ferry_bin, f).returncode == 0
    receiver.clear()
    move_saved_run_past_the_end(f.workdir / "ferry-redrive-rd.progress")

    res = redrive(ferry_bin, f)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "past the partition's end now" in res.stderr and "--restart" in res.stderr
    assert not receiver.requests
    res = redrive(ferry_bin, f, "--restart")
    assert res.returncode == 0 and "redriven 4" in summary(res), res.stdout + res.stderr
    assert keys(receiver.requests) == [f"k{i}" for i in range(4)]


def move_saved_run_past_the_end(progress):
    """Rewrites a saved run as a run over an older topic of that name would have left it: 100
    records further in each partition."""
    text, moved = re.subn(r"^partition (\d+) (\d+) (\d+)$",
                          lambda m: f"partition {m[1]} {int(m[2]) + 100} {int(m[3]) + 100}",
                          progress.read_text(), flags=re.M)
    assert moved >= 1, progress.read_text()
    progress.write_text(text)


def test_the_endpoint_refuses_a_saved_run_past_the_topics_end(ferry_bin, start_routes,
                                                              receiver, kafka):
    """The endpoint's answer to the same case: 409 with the way out, then restart: true."""
    import json
    f = running_with_dead_letters(start_routes, receiver, kafka, 3)[0]

    def post(body):
        return f.request("POST", "/routes/rd/redrive", body=json.dumps(body))

    r = post({})
    assert r.status == 200 and r.json()["redriven"] == 3, r.text
    receiver.clear()
    move_saved_run_past_the_end(f.workdir / "ferry-redrive-rd.progress")

    r = post({})
    assert r.status == 409, r.text
    message = r.json()["message"]
    assert "past the partition's end now" in message and "restart" in message, message
    assert not receiver.requests
    r = post({"restart": True})
    assert r.status == 200 and r.json()["redriven"] == 3, r.text
    assert keys(receiver.requests) == ["k0", "k1", "k2"]


def test_failed_again_are_counted_and_stay_where_they_are(ferry_bin, start_routes, receiver,
                                                          kafka):
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 4)
    receiver.handler = lambda rec: Reply(status=400 if rec.path.endswith("/k1") else 200)
    res = redrive(ferry_bin, f)

    assert res.returncode == 4, res.stdout + res.stderr
    assert summary(res).endswith("read 4, redriven 3, skipped by filter 0, failed again 1")
    assert "failed again: " in res.stdout and "http status 400" in res.stdout
    assert keys(receiver.requests) == ["k0", "k1", "k2", "k3"]
    # not dead-lettered a second time
    kafka.consume_n(dlq, 4, use_group=False)


def test_retries_follow_the_route_policy(ferry_bin, start_routes, receiver, kafka):
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 1)
    receiver.statuses(503, 500)
    res = redrive(ferry_bin, f)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [r.status for r in receiver.requests] == [503, 500, 200]


def test_status_filter(ferry_bin, start_routes, receiver, kafka):
    f, topic, dlq, dead = dead_letter(
        start_routes, receiver, kafka, 6, status_of=lambda key: 404 if key in ("k1", "k4") else 400)
    res = redrive(ferry_bin, f, "--status", "404", "--status", "410")

    assert res.returncode == 0, res.stdout + res.stderr
    assert summary(res).endswith("read 6, redriven 2, skipped by filter 4, failed again 0")
    assert keys(receiver.requests) == ["k1", "k4"]


def ferry_block(error, status, topic, offset, timestamp=None, route="rd"):
    """The ferry.* headers of one dead-letter write, in deadletter.c's order; status and
    timestamp only when given, as ferry writes them."""
    block = [("ferry.error", error.encode())]
    block += [("ferry.http_status", str(status).encode())] if status else []
    block += [("ferry.attempts", b"1"), ("ferry.topic", topic.encode()),
              ("ferry.partition", b"0"), ("ferry.offset", str(offset).encode())]
    block += [("ferry.timestamp", str(timestamp).encode())] if timestamp else []
    return block + [("ferry.route", route.encode())]


def test_status_filter_reads_the_newest_failure(ferry_bin, start_routes, receiver, kafka):
    """A dead letter replayed to its source topic with its headers and dead-lettered again
    holds two blocks of ferry's headers. After a 500 and then a timeout, its newest failure has
    no status: --status 500 leaves it, though an older block holds ferry.http_status 500."""
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 1, status_of=lambda k: 500)
    kafka.produce(dlq, [{"key": b"k1", "value": b"v1", "headers": [
        ("app", b"shop"), *ferry_block("http status 500", 500, topic, 1, 1700000000000),
        *ferry_block("timeout", None, topic, 1)]}])
    res = redrive(ferry_bin, f, "--status", "500")

    assert res.returncode == 0, res.stdout + res.stderr
    assert summary(res).endswith("read 2, redriven 1, skipped by filter 1, failed again 0"), \
        res.stdout
    assert keys(receiver.requests) == ["k0"]


def test_offset_bounds(ferry_bin, start_routes, receiver, kafka):
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 12)
    first = sorted(d.key.decode() for d in dead if d.offset == 0)
    busy = max({d.partition for d in dead}, key=lambda p: sum(d.partition == p for d in dead))
    second = [d.key.decode() for d in dead if d.partition == busy and d.offset == 1]
    assert second, "a partition with two dead letters"

    res = redrive(ferry_bin, f, "--to", "0")
    assert res.returncode == 0, res.stdout + res.stderr
    assert keys(receiver.requests) == first
    assert f"redriven {len(first)}," in summary(res)

    receiver.clear()
    res = redrive(ferry_bin, f, "--from", f"{busy}:1", "--to", f"{busy}:1", "--to", "0",
                  "--restart")
    # partition `busy` reads offset 1 only; the others offset 0 (--to 0, --from default 0)
    want = sorted([k for k in first if k not in
                   [d.key.decode() for d in dead if d.partition == busy]] + second)
    assert res.returncode == 0, res.stdout + res.stderr
    assert keys(receiver.requests) == want


def test_a_from_past_the_end_is_saved_as_the_end_and_still_kept(ferry_bin, start_routes,
                                                                 receiver, kafka):
    """--from past a partition's end: the run saves the partition's end as where it got to, not
    the --from, so the same command again is not refused as a run over a topic made again; and
    the command's --from still holds: of the dead letters written between the runs, those below
    it are left out and those at or after it sent."""
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 2)
    start = 6  # past every partition's end: 2 dead letters in all
    for _ in range(2):
        res = redrive(ferry_bin, f, "--from", str(start))
        assert res.returncode == 0, res.stdout + res.stderr
        assert summary(res).endswith("read 0, redriven 0, skipped by filter 0, failed again 0"), \
            res.stdout
    assert not receiver.requests

    # partition 0 filled up to offset start + 1: two dead letters at or after --from
    have = sum(d.partition == 0 for d in dead)
    kafka.produce(dlq, [{"key": f"n{o}".encode(), "value": b"later", "partition": 0,
                         "headers": ferry_block("http status 400", 400, topic, 100 + o)}
                        for o in range(have, start + 2)])
    res = redrive(ferry_bin, f, "--from", str(start))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "(after the previous run)" in summary(res), summary(res)
    assert summary(res).endswith("read 2, redriven 2, skipped by filter 0, failed again 0"), \
        summary(res)
    assert keys(receiver.requests) == [f"n{start}", f"n{start + 1}"]


def test_since_filter(ferry_bin, start_routes, receiver, kafka):
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 3)
    res = redrive(ferry_bin, f, "--since", "2000-01-01T00:00:00Z")
    assert res.returncode == 0 and "redriven 3" in summary(res), res.stdout + res.stderr
    newest = max(d.timestamp for d in dead)
    res = redrive(ferry_bin, f, "--since", str(newest + 1))
    assert res.returncode == 0, res.stdout + res.stderr
    assert summary(res).endswith("read 3, redriven 0, skipped by filter 3, failed again 0")
    assert len(receiver.requests) == 3


def test_dry_run_sends_and_saves_nothing(ferry_bin, start_routes, receiver, kafka):
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 3)
    res = redrive(ferry_bin, f, "--dry-run")

    assert res.returncode == 0, res.stdout + res.stderr
    assert summary(res).startswith("dry run: ")
    assert summary(res).endswith("read 3, would redrive 3, skipped by filter 0, would fail 0")
    assert res.stdout.count("would redrive: ") == 3
    assert f"POST {receiver.url}/in/k0" in res.stdout
    assert receiver.requests == []
    assert not (f.workdir / "ferry-redrive-rd.progress").exists()
    # the real run afterwards sends all three
    res = redrive(ferry_bin, f)
    assert res.returncode == 0 and len(receiver.requests) == 3


def start_redrive(ferry_bin, f, name, *args):
    return Proc([ferry_bin, "redrive", "-c", f.config_path, "--route", "rd", *args], f.workdir,
                name)


def test_interrupted_by_a_signal_resumes_without_resending(ferry_bin, start_routes, receiver,
                                                           kafka):
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 10)
    receiver.default = Reply(delay=0.5)  # 5 s in all: the signal comes well before the end
    p = start_redrive(ferry_bin, f, "redrive-1")
    receiver.wait_for(3, timeout=60)
    p.send_signal(signal.SIGINT)
    assert p.wait(30) == 3, p.describe()
    assert "interrupted: progress saved" in p.stdout_text()
    p.assert_no_sanitizer_report()
    sent = len(receiver.requests)
    assert sent < 10

    receiver.default = Reply()
    res = redrive(ferry_bin, f)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "(resumed)" in summary(res)
    assert f"redriven {10 - sent}," in summary(res)
    assert keys(receiver.requests) == sorted(f"k{i}" for i in range(10))  # each exactly once


def test_a_resumed_run_leaves_dead_letters_written_since_for_the_next_run(
        ferry_bin, start_routes, receiver, kafka):
    """A run reads up to the end each partition had when it began. Resumed after a signal, it
    keeps those ends: dead letters written meanwhile are the next run's."""
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 10)
    receiver.default = Reply(delay=0.5)
    p = start_redrive(ferry_bin, f, "redrive-1")
    receiver.wait_for(3, timeout=60)
    p.send_signal(signal.SIGINT)
    assert p.wait(30) == 3, p.describe()
    p.assert_no_sanitizer_report()
    sent = len(receiver.requests)
    assert sent < 10
    kafka.produce(dlq, [{"key": f"n{i}".encode(), "value": b"later",
                         "headers": ferry_block("http status 400", 400, topic, 100 + i)}
                        for i in range(4)])

    receiver.default = Reply()
    res = redrive(ferry_bin, f)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "(resumed)" in summary(res) and f"redriven {10 - sent}," in summary(res), summary(res)
    assert keys(receiver.requests) == sorted(f"k{i}" for i in range(10))

    res = redrive(ferry_bin, f)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "(after the previous run)" in summary(res) and "redriven 4," in summary(res), \
        summary(res)
    assert keys(receiver.requests[10:]) == [f"n{i}" for i in range(4)]


def test_a_second_run_over_one_progress_file_is_refused(ferry_bin, start_routes, receiver,
                                                          kafka):
    # Two runs over one progress file each sent the same dead letters and overwrote each
    # other's progress; the second now stops at once, naming the file.
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 10)
    receiver.default = Reply(delay=0.5)
    p = start_redrive(ferry_bin, f, "redrive-1")
    receiver.wait_for(1, timeout=60)
    res = redrive(ferry_bin, f)
    assert res.returncode == 1, res.stdout + res.stderr  # a later try may pass: not a usage error
    assert "another redrive of route 'rd' is running with the progress file" in res.stderr
    p.send_signal(signal.SIGINT)
    assert p.wait(30) == 3, p.describe()
    receiver.default = Reply()
    res = redrive(ferry_bin, f)  # the lock went with the first run
    assert res.returncode == 0, res.stdout + res.stderr
    assert keys(receiver.requests) == sorted(f"k{i}" for i in range(10))


def test_a_resumed_run_keeps_its_relative_since(ferry_bin, start_routes, receiver, kafka):
    """--since 15s selects the dead letters of the 15 s before the run began; resumed later,
    the run still takes those it had not sent yet, not only those of the 15 s before the
    resumption."""
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 10)
    receiver.default = Reply(delay=0.5)
    p = start_redrive(ferry_bin, f, "redrive-since", "--since", "15s")
    receiver.wait_for(3, timeout=60)
    p.send_signal(signal.SIGINT)
    assert p.wait(30) == 3, p.describe()
    sent = len(receiver.requests)
    assert sent < 10
    newest_s = max(d.timestamp for d in dead) / 1000
    wait_until(lambda: time.time() > newest_s + 16, 30, "the dead letters to be 15 s old")

    receiver.default = Reply()
    res = redrive(ferry_bin, f, "--since", "15s")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "(resumed)" in summary(res) and f"redriven {10 - sent}," in summary(res), summary(res)
    assert keys(receiver.requests) == sorted(f"k{i}" for i in range(10))


def test_killed_resumes_resending_at_most_the_one_under_way(ferry_bin, start_routes, receiver,
                                                            kafka):
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 10)
    receiver.default = Reply(delay=0.3)
    p = start_redrive(ferry_bin, f, "redrive-1")
    receiver.wait_for(4, timeout=60)
    p.send_signal(signal.SIGKILL)
    p.wait(10)

    receiver.default = Reply()
    res = redrive(ferry_bin, f)
    assert res.returncode == 0, res.stdout + res.stderr
    got = keys(receiver.requests)
    assert sorted(set(got)) == sorted(f"k{i}" for i in range(10))
    assert len(got) - 10 <= 1, got  # only the request under way at the kill goes again


def test_an_unfinished_run_with_other_options_is_refused(ferry_bin, start_routes, receiver,
                                                         kafka):
    f, topic, dlq, dead = dead_letter(start_routes, receiver, kafka, 6)
    receiver.default = Reply(delay=0.3)
    p = start_redrive(ferry_bin, f, "redrive-1")
    receiver.wait_for(1, timeout=60)
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 3, p.describe()
    p.assert_no_sanitizer_report()

    res = redrive(ferry_bin, f, "--status", "400")
    assert res.returncode == 2
    assert "holds an unfinished redrive of route 'rd'" in res.stderr
    assert "--restart" in res.stderr


def test_bad_command_lines(ferry_bin, tmp_path, ferry_config, receiver):
    cfg = ferry_config({"routes": [
        route_config("rd", ["t"], receiver.url, dead_letter={"topic": "t-dlq"}),
        route_config("plain", ["t"], receiver.url)]})
    path = tmp_path / "f.yaml"
    path.write_text(to_yaml(cfg))
    nobrokers = tmp_path / "nobrokers.yaml"
    del cfg["kafka"]
    nobrokers.write_text(to_yaml(cfg))

    cases = [
        ([], "--route NAME is required"),
        (["--route", "nope"], "no route named 'nope'"),
        (["--route", "plain"], "route 'plain' has no dead_letter.topic"),
        (["--route", "rd", "--from", "5", "--to", "3"], "--from 5 is after --to 3"),
        (["--route", "rd", "--from", "2:5", "--to", "2:3"], "partition 2: --from 5 is after --to 3"),
        (["--route", "rd", "--from", "x"], "--from: 'x': expected OFFSET or PARTITION:OFFSET"),
        (["--route", "rd", "--status", "99"], "--status: '99': expected an HTTP status"),
        (["--route", "rd", "--since", "yesterday"], "--since: 'yesterday': expected a duration"),
        (["--route", "rd", "--since", "1h", "--from", "3"], "--since cannot be combined"),
        (["--route", "rd", "--bogus"], "unknown option '--bogus'"),
        (["--route", "rd", "extra"], "unexpected argument 'extra'"),
    ]
    for args, want in cases:
        res = run_cli(ferry_bin, ["redrive", "-c", path, *args], cwd=tmp_path)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert want in res.stderr, (args, res.stderr)
    res = run_cli(ferry_bin, ["redrive", "-c", nobrokers, "--route", "rd"], cwd=tmp_path)
    assert res.returncode == 2 and "sets no kafka.brokers" in res.stderr, res.stderr
    res = run_cli(ferry_bin, ["redrive", "--help"])
    assert res.returncode == 0 and "usage: ferry redrive" in res.stdout


def test_admin_endpoint(ferry_bin, start_routes, receiver, kafka):
    import json
    topic, dlq = unique("rd"), unique("rd-dlq")
    ok_key, other_key = "redrive-key-0123456789", "other-key-0123456789"
    receiver.default = Reply(status=400)
    f = start_routes(
        route_config("rd", [topic], receiver.url + "/in/${key}", dead_letter={"topic": dlq}),
        overrides={"ingest": {"auth": {"keys": [
            {"name": "ops", "key": ok_key, "topics": [topic]},
            {"name": "other", "key": other_key, "topics": ["elsewhere"]}]}}})
    kafka.produce(topic, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(3)])
    kafka.consume_n(dlq, 3, use_group=False)
    receiver.default = Reply()
    receiver.clear()

    def post(path, body=None, key=ok_key):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return f.request("POST", path, headers=headers,
                         body=None if body is None else json.dumps(body))

    r = post("/routes/rd/redrive", {}, key=None)
    assert r.status == 401 and r.headers["www-authenticate"] == 'Bearer realm="ferry"'
    assert post("/routes/nope/redrive", {}, key=None).status == 401  # no hint which routes exist
    r = post("/routes/rd/redrive", {}, key=other_key)
    assert r.status == 403 and "may not redrive route 'rd'" in r.text
    assert post("/routes/nope/redrive", {}).status == 404
    assert post("/routes/rd/redrive", {"status": 99}).status == 400
    r = post("/routes/rd/redrive", {"bogus": 1})
    assert r.status == 400 and "'bogus': unknown field" in r.text
    r = post("/routes/rd/redrive", {"from": 5, "to": 3})  # named as the body names them
    assert r.status == 400 and r.json()["message"] == "from 5 is after to 3", r.text
    r = post("/routes/rd/redrive", {"since": "1h", "to": 3})
    assert r.status == 400 and r.json()["message"] == "since cannot be combined with from or to"

    r = post("/routes/rd/redrive", {"dry_run": True})
    assert r.status == 200, r.text
    got = r.json()
    assert (got["read"], got["redriven"], got["skipped_by_filter"], got["failed_again"]) == (
        3, 3, 0, 0) and got["dry_run"] is True
    assert len(got["details"]) == 3 and got["details"][0].startswith("would redrive: ")
    assert receiver.requests == []

    r = post("/routes/rd/redrive", {"status": [400, 404]})
    assert r.status == 200, r.text
    got = r.json()
    assert (got["read"], got["redriven"], got["failed_again"], got["interrupted"]) == (
        3, 3, 0, False)
    assert keys(receiver.requests) == ["k0", "k1", "k2"]
    # the same selection again: only dead letters written since
    got = post("/routes/rd/redrive", {"status": [404, 400]}).json()
    assert (got["read"], got["redriven"], got["continued"]) == (0, 0, True)
    assert len(receiver.requests) == 3


def test_admin_endpoint_keeps_at_most_100_lines(ferry_bin, start_routes, receiver, kafka):
    """A run over the endpoint keeps the first 100 per-record lines in memory and counts the
    rest, however many dead letters it reads; the command line prints every one."""
    import json
    n = 130
    key = "redrive-key-0123456789"
    f = running_with_dead_letters(start_routes, receiver, kafka, n, keys={"ops": key})[0]

    r = f.request("POST", "/routes/rd/redrive", headers={"Authorization": f"Bearer {key}"},
                  body=json.dumps({"dry_run": True}), timeout=60)  # reads all 130 first
    assert r.status == 200, r.text
    got = r.json()
    assert (got["read"], got["redriven"], got["failed_again"]) == (n, n, 0), got
    assert len(got["details"]) == 100 and got["details_omitted"] == n - 100
    assert all(line.startswith("would redrive: ") for line in got["details"])
    f.stop()
    res = redrive(ferry_bin, f, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert sum(line.startswith("would redrive: ") for line in res.stdout.splitlines()) == n


def test_the_endpoint_answers_409_while_a_command_holds_the_progress_file(
        ferry_bin, start_routes, receiver, kafka):
    # The command line and the endpoint take one lock: a run that finds it held is told so
    # (409), not that redriving failed (502).
    f = running_with_dead_letters(start_routes, receiver, kafka, 10)[0]
    receiver.default = Reply(delay=0.5)
    p = start_redrive(ferry_bin, f, "redrive-1")
    try:
        receiver.wait_for(1, timeout=60)
        r = f.request("POST", "/routes/rd/redrive", body="{}")
        assert r.status == 409 and "another redrive of route 'rd' is running" in r.text, r.text
    finally:
        p.send_signal(signal.SIGINT)
        rc = p.wait(30)
        receiver.default = Reply()
    assert rc == 3, p.describe()


def test_admin_endpoint_one_run_per_route_and_stopped_by_shutdown(ferry_bin, start_routes,
                                                                  receiver, kafka):
    import json
    import threading
    f = running_with_dead_letters(start_routes, receiver, kafka, 40)[0]
    receiver.default = Reply(delay=0.3)

    answers = []
    t = threading.Thread(target=lambda: answers.append(
        f.request("POST", "/routes/rd/redrive", body="{}", timeout=60)))
    t.start()
    receiver.wait_for(2, timeout=60)
    r = f.request("POST", "/routes/rd/redrive", body="{}")
    assert r.status == 409 and "a redrive of route 'rd' is under way" in r.text

    rc, _ = f.stop()
    t.join(60)
    assert rc == 0, f.describe()
    (answer,) = answers
    assert answer.status == 200, answer.text
    got = answer.json()
    assert got["interrupted"] is True and got["redriven"] == len(receiver.requests) < 40
    # the progress is the CLI's: the command line finishes what the endpoint began
    receiver.default = Reply()
    res = redrive(ferry_bin, f)
    assert res.returncode == 0 and "(resumed)" in summary(res), res.stdout + res.stderr
    assert keys(receiver.requests) == sorted(f"k{i}" for i in range(40))
