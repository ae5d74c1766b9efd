"""adaptive_report.py - the figures of bench/adaptive.sh, from its run directories.

  adaptive_report.py --one RUN_DIR                 one line for one run
  adaptive_report.py --capacity C [--ceilings FILE] RUNS_DIR   the table and the targets

A run directory holds the receiver's stats.json (answers per phase, whole and steady), ferry's
last /metrics scrape (metrics.txt), the adaptive limit sampled every ~0.25 s (limits.txt:
"SECONDS_INTO_SCHEDULE LIMIT") and meta.txt (key=value: round, case, concurrency, ferry_cpu_s).
Records/s are 200 answers per second at the receiver (one record per request, 503s retried).
"""
import argparse
import json
import os
import re
import statistics

BUCKET = re.compile(r'^ferry_route_request_duration_seconds_bucket\{(.*)\} (\S+)$')


def p99_ms(metrics_path):
    """ferry's p99 request latency over the whole run, interpolated within its bucket."""
    buckets = []
    try:
        with open(metrics_path) as f:
            for line in f:
                m = BUCKET.match(line.strip())
                if not m or 'route="bench"' not in m.group(1):
                    continue
                le = re.search(r'le="([^"]+)"', m.group(1)).group(1)
                buckets.append((float("inf") if le == "+Inf" else float(le), float(m.group(2))))
    except OSError:
        return None
    if not buckets or buckets[-1][1] == 0:
        return None
    want = 0.99 * buckets[-1][1]
    lo_bound, lo_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= want:
            if bound == float("inf"):
                return lo_bound * 1000
            share = (want - lo_count) / (count - lo_count) if count > lo_count else 1
            return (lo_bound + (bound - lo_bound) * share) * 1000
        lo_bound, lo_count = bound, count
    return None


def steady_limits(path, phases, steady_s):
    """The mean sampled limit in the steady part of each phase (None without samples)."""
    samples = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    samples.append((float(parts[0]), float(parts[1])))
    except OSError:
        pass
    out, start = [], 0.0
    for p in phases:
        vals = [v for t, v in samples if start + steady_s <= t < start + p["seconds"]]
        out.append(statistics.mean(vals) if vals else None)
        start += p["seconds"]
    return out


def share(busy, ok):
    return 100.0 * busy / (busy + ok) if busy + ok else 0.0


def figures(run_dir, steady_s):
    with open(os.path.join(run_dir, "stats.json")) as f:
        stats = json.load(f)
    with open(os.path.join(run_dir, "meta.txt")) as f:
        meta = dict(kv.split("=", 1) for kv in f.read().split())
    phases = stats["phases"]
    total_s = sum(p["seconds"] for p in phases)
    steady_total_s = sum(p["steady_seconds"] for p in phases)
    ok = sum(p["ok"] for p in phases)
    busy = sum(p["busy"] for p in phases)
    ok_steady = sum(p["ok_steady"] for p in phases)
    busy_steady = sum(p["busy_steady"] for p in phases)
    limits = steady_limits(os.path.join(run_dir, "limits.txt"), phases, steady_s)
    return {
        "round": int(meta["round"]), "case": meta["case"], "adaptive": meta["adaptive"] == "1",
        "phases": phases, "rps": ok / total_s, "busy_pct": share(busy, ok),
        "rps_steady": ok_steady / steady_total_s if steady_total_s else 0.0,
        "busy_steady_pct": share(busy_steady, ok_steady),
        "phase_rps_steady": [p["ok_steady"] / p["steady_seconds"] if p["steady_seconds"] else 0
                             for p in phases],
        "phase_busy_steady_pct": [share(p["busy_steady"], p["ok_steady"]) for p in phases],
        "p99_ms": p99_ms(os.path.join(run_dir, "metrics.txt")),
        "limits": limits, "ferry_cpu_s": float(meta["ferry_cpu_s"]),
        "receiver_cpu_s": stats["cpu_s"], "max_in_flight": stats["max_in_flight"],
    }


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def one_line(r):
    lim = "/".join(fmt(v, ".1f") for v in r["limits"]) if r["adaptive"] else "-"
    phases = " ".join(f"{x:.0f}/s,{b:.2f}%" for x, b in
                      zip(r["phase_rps_steady"], r["phase_busy_steady_pct"]))
    return (f"   {r['case']:<16} rps={r['rps']:.0f} rps_steady={r['rps_steady']:.0f} "
            f"503={r['busy_pct']:.2f}% 503_steady={r['busy_steady_pct']:.2f}% "
            f"p99_ms={fmt(r['p99_ms'], '.1f')} limit_steady={lim} "
            f"ferry_cpu_s={r['ferry_cpu_s']:.2f} receiver_max_in_flight={r['max_in_flight']} "
            f"phases(steady)=[{phases}]")


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def runs_by_case(runs_dir, steady_s):
    by_case = {}
    for name in sorted(os.listdir(runs_dir)):
        d = os.path.join(runs_dir, name)
        if os.path.exists(os.path.join(d, "stats.json")):
            r = figures(d, steady_s)
            by_case.setdefault(r["case"], {})[r["round"]] = r
    return by_case


def hand_tuned(fixed_by_capacity, phases, rnd, steady):
    """Records/s of the fixed run at each phase's capacity, phase by phase (None if missing)."""
    ok = secs = 0.0
    for i, p in enumerate(phases):
        r = fixed_by_capacity.get(p["capacity"], {}).get(rnd)
        if r is None:
            return None
        ok += r["phases"][i]["ok_steady" if steady else "ok"]
        secs += p["steady_seconds" if steady else "seconds"]
    return ok / secs if secs else None


def ratio_line(name, pairs):
    ratios = [a / b for a, b in pairs if a is not None and b]
    m = med(ratios)
    each = " / ".join(f"{x:.2f}" for x in ratios)
    return m, f"{name}: {fmt(m, '.2f')}x ({each})"


def report(args):
    by_case = runs_by_case(args.runs, args.steady)
    if args.ceilings and os.path.exists(args.ceilings):
        print("receiver ceilings (ferry-bench-curl, a bare libcurl client):")
        with open(args.ceilings) as f:
            for line in f:
                print("  ", line.strip())
    print(f"records/s: 200 answers per second at the receiver; steady: after the first "
          f"{args.steady:g} s of each phase; p99: ferry's request latency (histogram, whole run); "
          f"limit: mean adaptive limit at steady state, per phase")
    head = (f"{'case':<16} {'rec/s':>7} {'steady':>7} {'503%':>7} {'503% st':>8} {'p99 ms':>7} "
            f"{'limit':>13} {'CPU s':>6}  steady rec/s of each round")
    print(head)
    for case, rounds in by_case.items():
        rs = [rounds[k] for k in sorted(rounds)]
        lims = [med([r["limits"][i] for r in rs]) for i in range(len(rs[0]["limits"]))]
        lim = "/".join(fmt(v, ".1f") for v in lims) if rs[0]["adaptive"] else "-"
        print(f"{case:<16} {med([r['rps'] for r in rs]):7.0f} "
              f"{med([r['rps_steady'] for r in rs]):7.0f} "
              f"{med([r['busy_pct'] for r in rs]):6.2f}% "
              f"{med([r['busy_steady_pct'] for r in rs]):7.2f}% "
              f"{fmt(med([r['p99_ms'] for r in rs]), '7.1f')} {lim:>13} "
              f"{med([r['ferry_cpu_s'] for r in rs]):6.2f}  "
              + " / ".join(f"{r['rps_steady']:.0f}" for r in rs))
    print()
    targets = []
    cap = f"fixed-{args.capacity}"
    adaptive = by_case.get(f"adaptive-{args.capacity}", {})
    fixed = by_case.get(cap, {})
    m, line = ratio_line(f"fixed capacity {args.capacity}, adaptive / fixed at steady state",
                         [(adaptive[k]["rps_steady"], fixed[k]["rps_steady"])
                          for k in sorted(adaptive) if k in fixed])
    print(line)
    _, line = ratio_line("  the same over the whole run (the ramp from min included)",
                         [(adaptive[k]["rps"], fixed[k]["rps"]) for k in sorted(adaptive)
                          if k in fixed])
    print(line)
    targets.append(("adaptive within 10% of fixed (fixed capacity)", m, m is not None and m >= 0.9,
                    f"{fmt(m, '.2f')}x"))
    b = med([r["busy_steady_pct"] for r in adaptive.values()])
    targets.append(("under 1% 503 at steady state (fixed capacity)", b, b is not None and b < 1,
                    f"{fmt(b, '.2f')}%"))

    sched = by_case.get("sched-adaptive", {})
    fixed_by_capacity = {int(c[len("sched-fixed-"):]): rounds for c, rounds in by_case.items()
                         if c.startswith("sched-fixed-")}
    if sched:
        phases = next(iter(sched.values()))["phases"]
        for i, p in enumerate(phases):
            f = fixed_by_capacity.get(p["capacity"], {})
            _, line = ratio_line(f"schedule phase {i + 1} (capacity {p['capacity']}), adaptive / "
                                 f"fixed-{p['capacity']} at steady state",
                                 [(sched[k]["phase_rps_steady"][i], f[k]["phase_rps_steady"][i])
                                  for k in sorted(sched) if k in f])
            print(line + f", adaptive 503 share "
                  f"{fmt(med([r['phase_busy_steady_pct'][i] for r in sched.values()]), '.2f')}%")
        m, line = ratio_line("schedule, adaptive / hand-tuned (each phase's fixed run at its "
                             "capacity) at steady state",
                             [(sched[k]["rps_steady"],
                               hand_tuned(fixed_by_capacity, phases, k, True))
                              for k in sorted(sched)])
        print(line)
        _, line = ratio_line("  the same over the whole schedule (transitions included)",
                             [(sched[k]["rps"], hand_tuned(fixed_by_capacity, phases, k, False))
                              for k in sorted(sched)])
        print(line)
        for c, f in sorted(fixed_by_capacity.items()):
            _, line = ratio_line(f"  schedule, adaptive / fixed-{c} over the whole schedule",
                                 [(sched[k]["rps"], f[k]["rps"]) for k in sorted(sched) if k in f])
            print(line)
        targets.append(("adaptive within 10% of hand-tuned (schedule)", m,
                        m is not None and m >= 0.9, f"{fmt(m, '.2f')}x"))
        b = med([r["busy_steady_pct"] for r in sched.values()])
        targets.append(("under 1% 503 at steady state (schedule)", b, b is not None and b < 1,
                        f"{fmt(b, '.2f')}%"))
    print()
    for name, _, ok, shown in targets:
        print(f"target: {name}: {shown}: {'met' if ok else 'NOT met'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steady", type=float, default=3)
    ap.add_argument("--capacity", type=int, default=20)
    ap.add_argument("--ceilings")
    ap.add_argument("--one", action="store_true")
    ap.add_argument("runs")
    args = ap.parse_args()
    if args.one:
        print(one_line(figures(args.runs, args.steady)))
    else:
        report(args)


if __name__ == "__main__":
    main()
