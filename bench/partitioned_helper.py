#!/usr/bin/python3
"""partitioned_helper.py - what bench/partitioned.sh asks of three ferry instances.

  placed URL TABLE REPLICAS TIMEOUT [GONE]
                                      waits until URL's member map shows every partition served
                                      by exactly its REPLICAS placement holders (and instance GONE
                                      not among the members); prints seconds
  classify URL TABLE KEYS N OUTDIR    asks URL for N random keys of k0..k<KEYS-1> and writes the
                                      paths it served itself to OUTDIR/local and the others to
                                      OUTDIR/forwarded
"""
import http.client
import json
import random
import sys
import time
from urllib.parse import urlsplit


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.getheader("Ferry-Served-By"), r.read()


def connect(url):
    u = urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


def placed(conn, table, replicas, gone=None):
    status, _, body = get(conn, f"/tables/{table}")
    if status != 200:
        return False
    doc = json.loads(body)
    if gone and any(m["instance"] == gone for m in doc["members"]):
        return False
    serving = {}
    for m in doc["members"]:
        for p in m["partitions"]:
            if p["serving"]:
                serving.setdefault(p["partition"], set()).add(m["instance"])
    if not doc["holders"]:
        return False
    return all(len(h["holders"]) == replicas and
               serving.get(h["partition"]) == {x["instance"] for x in h["holders"]}
               for h in doc["holders"])


def cmd_placed(url, table, replicas, timeout, gone=None):
    conn, start = connect(url), time.monotonic()
    while time.monotonic() - start < float(timeout):
        try:
            if placed(conn, table, int(replicas), gone):
                print(f"{time.monotonic() - start:.2f}")
                return 0
        except (OSError, http.client.HTTPException):
            conn = connect(url)
        time.sleep(0.05)
    print("timeout")
    return 1


def cmd_classify(url, table, keys, n, outdir):
    conn, rnd = connect(url), random.Random(5)
    status, _, body = get(conn, f"/tables/{table}")
    me = [m["instance"] for m in json.loads(body)["members"] if m["self"]][0]
    local, fwd = [], []
    for _ in range(int(n)):
        path = f"/tables/{table}/keys/k{rnd.randrange(int(keys))}"
        status, served_by, _ = get(conn, path)
        if status == 200:
            (local if served_by == me else fwd).append(path)
    for name, paths in (("local", local), ("forwarded", fwd)):
        with open(f"{outdir}/{name}", "w") as f:
            f.write("\n".join(paths) + "\n")
    print(f"local={len(local)} forwarded={len(fwd)}")
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    sys.exit({"placed": cmd_placed, "classify": cmd_classify}[cmd](*args))
