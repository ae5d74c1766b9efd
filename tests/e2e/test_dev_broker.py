"""`ferry dev-broker`: librdkafka's mock cluster as a real Kafka endpoint for real clients."""
import re
import signal
import subprocess

from ferrytest import unique, wait_until

BOOTSTRAP_RE = re.compile(r"^127\.0\.0\.1:\d{1,5}(,127\.0\.0\.1:\d{1,5})*$")


def test_prints_bootstrap_first_and_writes_file(start_dev_broker):
    broker = start_dev_broker()
    assert BOOTSTRAP_RE.match(broker.bootstrap), broker.bootstrap
    first = wait_until(broker.first_stdout_line, 10, "the first stdout line")
    assert first.strip() == broker.bootstrap
    assert broker.bootstrap_file.read_text().strip() == broker.bootstrap
    # A warning that nothing survives the process.
    warning = wait_until(
        lambda: [l for l in broker.stderr_text().splitlines()
                 if re.search(r"memory|kept|lost|persist", l, re.I)],
        10, "a warning on stderr that nothing is kept")
    assert warning
    # The address goes with the cluster: no stale file for the next reader.
    broker.stop()
    assert not broker.bootstrap_file.exists()


def test_brokers_flag_gives_that_many_brokers(start_dev_broker):
    from confluent_kafka.admin import AdminClient

    broker = start_dev_broker("--brokers", "3")
    addrs = broker.bootstrap.split(",")
    assert len(addrs) == 3 and len(set(addrs)) == 3, broker.bootstrap
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = wait_until(lambda: admin.list_topics(timeout=2), 10, "cluster metadata")
    assert len(md.brokers) == 3, md.brokers


def test_confluent_kafka_round_trip(kafka):
    topic = unique("rt")
    records = [{"key": f"k{i}".encode(), "value": f"v{i}".encode(),
                "headers": [("h", f"{i}".encode())]} for i in range(200)]
    kafka.produce(topic, records)
    got = kafka.consume_n(topic, 200, timeout=30)  # group subscription, as a real consumer does
    assert sorted((r.key, r.value) for r in got) == sorted((r["key"], r["value"]) for r in records)
    assert all(r.headers == [("h", r.key[1:])] for r in got)
    # Per partition, offsets are 0..n-1 in order.
    by_part = {}
    for r in got:
        by_part.setdefault(r.partition, []).append(r.offset)
    for offsets in by_part.values():
        assert offsets == list(range(len(offsets)))


def test_auto_created_topic_has_4_partitions(kafka):
    topic = unique("auto")
    kafka.produce(topic, [b"x"])
    assert kafka.partitions(topic) == 4


def test_topic_flag_precreates_partitions(start_dev_broker):
    from ferrytest import Kafka

    broker = start_dev_broker("--topic", "orders:8", "--topic", "small:2")
    k = Kafka(broker.bootstrap)
    assert k.partitions("orders") == 8
    assert k.partitions("small") == 2
    # All 8 partitions take records.
    k.produce("orders", [{"value": b"p%d" % p, "partition": p} for p in range(8)])
    got = k.consume_n("orders", 8, timeout=20, use_group=False)
    assert sorted(r.partition for r in got) == list(range(8))


def test_kcat_round_trip(dev_broker):
    topic = unique("kcat")
    lines = [f"key{i}:value {i}" for i in range(50)]
    prod = subprocess.run(
        ["kcat", "-b", dev_broker, "-P", "-t", topic, "-K:"],
        input="\n".join(lines) + "\n", text=True, capture_output=True, timeout=30)
    assert prod.returncode == 0, prod.stderr
    cons = subprocess.run(
        ["kcat", "-b", dev_broker, "-C", "-t", topic, "-e", "-q", "-o", "beginning",
         "-X", "fetch.wait.max.ms=10", "-f", "%k=%s\\n"],
        text=True, capture_output=True, timeout=30)
    assert cons.returncode == 0, cons.stderr
    got = sorted(l for l in cons.stdout.splitlines() if l)
    assert got == sorted(l.replace(":", "=", 1) for l in lines)


def test_sigterm_exits_0(start_dev_broker):
    broker = start_dev_broker()
    rc, elapsed = broker.stop(signal.SIGTERM, timeout=10)
    assert rc == 0, broker.describe()
    assert elapsed < 5, f"took {elapsed:.1f}s to stop"


def test_sigint_exits_0(start_dev_broker):
    broker = start_dev_broker()
    rc, elapsed = broker.stop(signal.SIGINT, timeout=10)
    assert rc == 0, broker.describe()
    assert elapsed < 5, f"took {elapsed:.1f}s to stop"
