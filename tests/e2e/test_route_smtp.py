"""E-mail targets (`target.smtp`) against a real SMTP server (python3-aiosmtpd, in this process): a
templated message arrives intact (headers, an RFC 2047 subject, multipart/alternative, the
Message-ID of its record); 1,000 messages use at most `concurrency` connections; STARTTLS
required by the server works with the route's tls.ca_file; a 451 is retried and a 550
dead-lettered; header injection sends nothing and dead-letters with that reason; kill -9
mid-stream loses no e-mail, and a message sent twice keeps its Message-ID (and, resent from a
retry topic, its Date too); the circuit breaker and `ferry redrive` work for e-mail as for HTTP;
a server that refuses the session (its greeting, HELO, or MAIL FROM with 530) gets the record
retried and counted by the breaker, never dead-lettered; SMTP's 503 is not push-back for
adaptive concurrency; `ferry check` names a target with two kinds and a batch on an e-mail
route.
"""
import email
import email.policy
import json
import signal
import subprocess
import time

import pytest

from ferrytest import route_config, route_metric, run_cli, unique, wait_route_metric, wait_until
from smtpserver import ScriptedSmtp, SmtpServer, tls_context


def smtp_route(name, topic, url, **over):
    smtp = {"url": url, "starttls": "off", "from": "Ferry <noreply@example.com>",
            "to": "${value.name} <${value.email}>", "subject": "Welcome, ${value.name}",
            "text": "Hello ${value.name}"}
    smtp.update(over.pop("smtp", {}))
    r = route_config(name, [topic], "unused", **over)
    r["target"] = {"smtp": smtp, **over.pop("target", {})}
    return r


def signup(i, name=None, email_addr=None):
    return {"partition": 0, "key": f"k{i}".encode(),
            "value": json.dumps({"email": email_addr or f"user{i}@example.com",
                                 "name": name or f"User {i}"}).encode()}


def parse(msg):
    return email.message_from_bytes(msg.data, policy=email.policy.default)


@pytest.fixture
def smtp():
    s = SmtpServer().start()
    yield s
    s.stop()


def test_templated_message_arrives_intact(start_routes, kafka, smtp):
    topic = unique("mail")
    route = smtp_route("mail", topic, smtp.url, smtp={
        "cc": ["audit@example.com"],
        "bcc": ["archive+${key}@example.com"],
        "reply_to": "Help <help@example.com>",
        "headers": {"X-Campaign": "welcome-${value.name}"},
        "subject": "Willkommen, ${value.name} \u2713",
        "text": "Hallo ${value.name},\nline two\n",
        "html": "<p>Hallo ${value.name}</p>"})
    start_routes(route)
    kafka.produce(topic, [signup(0, name="Zo\u00eb Stra\u00dfer", email_addr="zoe@example.com")])
    [m] = smtp.wait_messages(1)
    assert m.mail_from == "noreply@example.com"
    assert m.rcpt_tos == ["zoe@example.com", "audit@example.com",
                          "archive+k0@example.com"]
    raw = m.data.decode("ascii")  # everything on the wire is 7-bit
    assert "Subject: =?utf-8?B?" in raw
    assert "\r\n" in raw and "\n" not in raw.replace("\r\n", "")
    msg = parse(m)
    assert msg["Subject"] == "Willkommen, Zo\u00eb Stra\u00dfer \u2713"
    assert msg["From"].addresses[0].addr_spec == "noreply@example.com"
    assert msg["To"].addresses[0].display_name == "Zo\u00eb Stra\u00dfer"
    assert msg["To"].addresses[0].addr_spec == "zoe@example.com"
    assert msg["Cc"].addresses[0].addr_spec == "audit@example.com"
    assert msg["Reply-To"].addresses[0].addr_spec == "help@example.com"
    assert "Bcc" not in msg and b"archive" not in m.data  # blind copies are not named
    assert msg["X-Campaign"] == "welcome-Zo\u00eb Stra\u00dfer"
    assert msg["Message-ID"] == f"<ferry.mail.{topic}.0.0@example.com>"
    assert msg["Date"].datetime is not None
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.get_payload()
    assert text.get_content_type() == "text/plain"
    # the parser keeps the wire's CRLF line ends
    assert text.get_content().replace("\r\n", "\n") == "Hallo Zo\u00eb Stra\u00dfer,\nline two\n"
    assert html.get_content_type() == "text/html"
    assert html.get_content().strip() == "<p>Hallo Zo\u00eb Stra\u00dfer</p>"


def test_thousand_messages_within_concurrency_connections(start_routes, kafka, smtp):
    topic = unique("mail-many")
    n, concurrency = 1000, 4
    f = start_routes(smtp_route("many", topic, smtp.url, concurrency=concurrency,
                                ordering="none"))
    start = time.monotonic()
    kafka.produce(topic, [signup(i) | {"partition": i % 4} for i in range(n)])
    msgs = smtp.wait_messages(n, timeout=120)
    seconds = time.monotonic() - start
    ids = {parse(m)["Message-ID"] for m in msgs}
    assert len(ids) == n
    assert 1 <= smtp.connections <= concurrency, smtp.connections
    wait_route_metric(f, "ferry_route_records_delivered_total", "many", n)
    print(f"{n} messages in {seconds:.1f} s ({n / seconds:.0f}/s) over "
          f"{smtp.connections} connections")


def test_starttls_required_by_the_server(start_routes, kafka, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    with SmtpServer(tls_context(str(cert), str(key)), require_starttls=True) as s:
        topic = unique("mail-tls")
        start_routes(smtp_route("tls", topic, s.url, smtp={"starttls": "required"},
                                target={"tls": {"ca_file": str(cert)}}))
        kafka.produce(topic, [signup(i) for i in range(3)])
        msgs = s.wait_messages(3)
        assert all(m.tls for m in msgs)


def test_451_is_retried_and_550_dead_lettered(start_routes, kafka, smtp):
    topic, dlq = unique("mail-fail"), unique("mail-dlq")
    smtp.tempfail["slow@example.com"] = 2
    smtp.reject.add("gone@example.com")
    f = start_routes(smtp_route("fail", topic, smtp.url, dead_letter={"topic": dlq}))
    kafka.produce(topic, [signup(0, email_addr="slow@example.com"),
                          signup(1, email_addr="gone@example.com") | {"key": b"gone"},
                          signup(2)])
    msgs = smtp.wait_messages(2)
    assert sorted(m.rcpt_tos[0] for m in msgs) == ["slow@example.com", "user2@example.com"]
    assert smtp.rcpts.count("slow@example.com") == 3  # two 451s, then accepted
    [dead] = kafka.consume_n(dlq, 1, use_group=False)
    h = {k: v.decode() for k, v in dead.headers}
    assert dead.key == b"gone"
    assert h["ferry.http_status"] == "550"
    assert h["ferry.error"].startswith("smtp reply 550"), h["ferry.error"]
    assert "no such user" in h.get("ferry.response", ""), h
    m = wait_route_metric(f, "ferry_route_records_dead_lettered_total", "fail", 1)
    assert route_metric(m, "ferry_route_records_retried_total", "fail") >= 2
    assert not [m for m in smtp.messages if "gone@example.com" in m.rcpt_tos]


INJECTIONS = {
    "rcpt-crlf": signup(0, email_addr="a@example.com>\r\nRCPT TO:<evil@example.com"),
    "rcpt-lf": signup(1, email_addr="a@example.com\nRCPT TO:<evil@example.com>"),
    "two-addresses": signup(2, email_addr="a@example.com, evil@example.com"),
    "subject-crlf": signup(3, name="x\r\nBcc: evil@example.com"),
}


def test_header_injection_sends_nothing(start_routes, kafka, smtp):
    topic, dlq = unique("mail-inj"), unique("mail-inj-dlq")
    start_routes(smtp_route("inj", topic, smtp.url, dead_letter={"topic": dlq},
                            smtp={"to": "${value.email}"}))
    records = [r | {"key": k.encode()} for k, r in INJECTIONS.items()]
    kafka.produce(topic, records + [signup(9)])
    dead = {r.key.decode(): r for r in kafka.consume_n(dlq, len(INJECTIONS), use_group=False)}
    assert set(dead) == set(INJECTIONS)
    for key, r in dead.items():
        error = dict(r.headers)["ferry.error"].decode()
        assert error.startswith("header injection"), (key, error)
    [m] = smtp.wait_messages(1)
    assert m.rcpt_tos == ["user9@example.com"]
    assert "evil@example.com" not in smtp.rcpts
    assert b"evil" not in m.data


def test_kill_mid_stream_loses_no_email(start_routes, kafka, smtp):
    topic = unique("mail-crash")
    n = 400
    route = smtp_route("crash", topic, smtp.url, concurrency=8)
    first = start_routes(route, name="first")
    kafka.produce(topic, [signup(i) | {"partition": i % 4} for i in range(n)])
    wait_until(lambda: len(smtp.messages) >= 50, 60, "50 messages before the kill")
    first.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    before = len(smtp.messages)
    start_routes(route, name="second", timeout=60)
    msgs = smtp.wait_messages(n, timeout=120)
    wait_until(lambda: len({parse(m)["Message-ID"] for m in smtp.messages}) >= n, 60,
               "every message once")
    by_rcpt = {}
    for m in smtp.messages:
        by_rcpt.setdefault(m.rcpt_tos[0], set()).add(parse(m)["Message-ID"])
    assert len(by_rcpt) == n
    assert all(len(ids) == 1 for ids in by_rcpt.values()), "a resent e-mail changed Message-ID"
    print(f"{before} messages before the kill, {len(msgs) - n} sent twice")


def test_check_names_the_target_kind(ferry_bin, tmp_path):
    cfg = tmp_path / "f.yaml"
    cfg.write_text("kafka:\n  brokers: 127.0.0.1:9\nroutes:\n  - name: r\n    topics: [t]\n"
                   "    target:\n      url: http://x/\n      smtp:\n        url: smtp://x:25\n"
                   "        from: a@b.c\n        to: d@e.f\n        subject: s\n"
                   "        text: t\n")
    res = run_cli(ferry_bin, ["check", "-c", str(cfg)])
    assert res.returncode != 0
    assert "routes[0].target" in res.stderr and "only one of url" in res.stderr, res.stderr
    assert "f.yaml:6" in res.stderr, res.stderr
    cfg.write_text("kafka:\n  brokers: 127.0.0.1:9\nroutes:\n  - name: r\n    topics: [t]\n"
                   "    batch: {max_records: 5}\n"
                   "    target:\n      smtp:\n        url: smtp://x:25\n"
                   "        from: a@b.c\n        to: d@e.f\n        subject: s\n")
    res = run_cli(ferry_bin, ["check", "-c", str(cfg)])
    assert res.returncode != 0
    assert "routes[0].batch.max_records" in res.stderr and "one message per record" in res.stderr
    assert "expected text, html or both" in res.stderr, res.stderr


def test_breaker_opens_while_the_server_is_away_and_nothing_is_lost(start_routes, kafka):
    """The route features work for e-mail too: with the SMTP server gone the circuit breaker
    opens (connection refused counts as a failure), nothing is dead-lettered, and every
    message arrives once the server is back."""
    topic, dlq = unique("mail-away"), unique("mail-away-dlq")
    first = SmtpServer().start()
    port = first.port
    route = smtp_route("away", topic, first.url, dead_letter={"topic": dlq},
                       retry={"max_attempts": 0},
                       circuit_breaker={"enabled": True, "min_requests": 3,
                                        "consecutive_failures": 3, "open": "300ms",
                                        "max_open": "1s"})
    f = start_routes(route)
    kafka.produce(topic, [signup(0)])
    first.wait_messages(1)
    first.stop()
    kafka.produce(topic, [signup(i) | {"partition": i % 4} for i in range(1, 21)])
    wait_route_metric(f, "ferry_route_circuit_transitions_total", "away", 1, to="open")
    second = SmtpServer(port=port).start()
    try:
        msgs = second.wait_messages(20)
        assert len({m.rcpt_tos[0] for m in msgs}) == 20
        m = wait_route_metric(f, "ferry_route_records_delivered_total", "away", 21)
        assert route_metric(m, "ferry_route_records_dead_lettered_total", "away") == 0
    finally:
        second.stop()


def test_redrive_sends_a_dead_lettered_email_with_its_message_id(ferry_bin, start_routes, kafka,
                                                                 smtp):
    topic, dlq = unique("mail-rd"), unique("mail-rd-dlq")
    smtp.reject.add("gone@example.com")
    f = start_routes(smtp_route("rd", topic, smtp.url, dead_letter={"topic": dlq}))
    kafka.produce(topic, [signup(0, email_addr="gone@example.com")])
    kafka.consume_n(dlq, 1, use_group=False)
    f.stop()
    smtp.reject.clear()  # the mailbox exists now
    res = run_cli(ferry_bin, ["redrive", "-c", f.config_path, "--route", "rd"], timeout=60,
                  cwd=f.workdir)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "redriven 1" in res.stdout, res.stdout
    [m] = smtp.wait_messages(1)
    assert m.rcpt_tos == ["gone@example.com"]
    assert parse(m)["Message-ID"] == f"<ferry.rd.{topic}.0.0@example.com>"


SESSION_REFUSALS = {
    "greeting": {"greeting": "554 5.7.1 no SMTP service here"},
    "helo": {"replies": {"EHLO": "502 5.5.2 not implemented", "HELO": "554 5.7.1 go away"}},
    "auth-required": {"replies": {"MAIL": "530 5.7.0 authentication required"}},
}


@pytest.mark.parametrize("refusal", SESSION_REFUSALS)
def test_a_refused_session_is_retried_and_counted_by_the_breaker(start_routes, kafka, refusal):
    """A refusal before MAIL FROM, or a 530 to it, is about the server or the route's login,
    not the message: the record is tried again (each attempt a new session), the attempts count
    as failures (the breaker opens), and nothing is dead-lettered."""
    topic, dlq = unique("mail-session"), unique("mail-session-dlq")
    kafka.produce(dlq, [{"partition": 0, "key": b"marker", "value": b"put here by the test"}])
    with ScriptedSmtp(**SESSION_REFUSALS[refusal]) as s:
        f = start_routes(smtp_route("session", topic, s.url, dead_letter={"topic": dlq},
                                    retry={"max_attempts": 0},
                                    circuit_breaker={"enabled": True, "min_requests": 3,
                                                     "consecutive_failures": 3, "open": "300ms",
                                                     "max_open": "1s"}))
        kafka.produce(topic, [signup(0)])
        m = wait_route_metric(f, "ferry_route_circuit_transitions_total", "session", 1,
                              to="open")
        wait_until(lambda: s.connections >= 4, 30, "a new session for each attempt")
        assert s.messages == 0
    assert route_metric(m, "ferry_route_requests_total", "session", **{"class": "error"}) >= 3
    assert route_metric(m, "ferry_route_records_retried_total", "session") >= 2
    assert route_metric(m, "ferry_route_records_dead_lettered_total", "session") == 0
    [only] = kafka.consume_n(dlq, 1, use_group=False)
    assert only.key == b"marker"


def test_503_is_not_push_back_for_adaptive_concurrency(start_routes, kafka):
    """SMTP's 503 is "bad sequence of commands", not HTTP's "overloaded": with every message
    refused so, the limit grows from its minimum as for any quick answer (push-back would hold
    it at 1)."""
    topic, dlq = unique("mail-503"), unique("mail-503-dlq")
    with ScriptedSmtp(replies={"RCPT": "503 5.5.1 bad sequence of commands"}) as s:
        f = start_routes(smtp_route("seq", topic, s.url, concurrency=8, ordering="none",
                                    dead_letter={"topic": dlq},
                                    adaptive_concurrency={"enabled": True,
                                                          "latency_tolerance": 50}))
        assert route_metric(f.metrics(), "ferry_route_concurrency_limit", "seq") == 1
        kafka.produce(topic, [signup(i) | {"partition": i % 4} for i in range(3000)])
        wait_route_metric(f, "ferry_route_concurrency_limit", "seq", 3)
        m = wait_route_metric(f, "ferry_route_records_dead_lettered_total", "seq", 100)
        assert s.messages == 0
    assert route_metric(m, "ferry_route_requests_total", "seq", **{"class": "5xx"}) >= 100


def test_a_message_resent_from_a_retry_topic_keeps_its_message_id_and_date(start_routes, kafka,
                                                                            smtp):
    topic = unique("mail-rt")
    smtp.data_tempfail = 1  # the server reads the first message whole, then answers 451
    start_routes(smtp_route("rt", topic, smtp.url,
                            retry={"max_attempts": 1, "topics": [{"delay": "200ms"}]}))
    ts = 1700000000000
    (sent,) = kafka.produce(topic, [signup(0) | {"timestamp": ts}])
    [m] = smtp.wait_messages(1)
    [refused] = smtp.refused
    for msg in (parse(refused), parse(m)):
        assert msg["Message-ID"] == f"<ferry.rt.{topic}.0.{sent.offset()}@example.com>"
        assert msg["Date"].datetime.timestamp() == ts / 1000
