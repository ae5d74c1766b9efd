"""capacity_receiver.py - an HTTP receiver with a capacity, for bench/adaptive.sh.

It answers any POST after a fixed delay (200 "ok") while fewer than CAPACITY requests are under
way, and at once with 503 beyond that, as a service with a fixed number of workers would. The
capacity follows a schedule of phases ("20:10,5:10,20:10": 20 for 10 s, 5 for 10 s, 20 for
10 s) whose clock starts at the first POST after the schedule was armed, so a route's group
join (about 3 s on the dev broker) is left out. After the last phase the last capacity holds.

Control, on the same port (never counted):
  POST /_control/arm?schedule=20:10,5:10&delay_ms=20   forgets the last run and arms a new one
  GET  /_control/stats?steady=3                         JSON: per phase, answers of each kind in
       the whole phase and in its steady part (after its first `steady` seconds), the most
       requests seen under way, the receiver's own CPU seconds, and done (the schedule is over)
  GET  /_control/state                                  "ELAPSED TOTAL": seconds since the
       schedule's first POST (-1 before it) and the schedule's length; cheap, for polling

  /usr/bin/python3 bench/capacity_receiver.py --port-file FILE

binds 127.0.0.1 on a port the OS picks and writes it to FILE once it listens. One process, one
event loop (aiohttp); bench/adaptive.sh measures what it can answer with a bare libcurl client.
"""
import argparse
import asyncio
import os
import resource
import signal
import time

from aiohttp import web


def parse_schedule(text):
    phases = []
    for part in text.split(","):
        capacity, seconds = part.split(":")
        phases.append((int(capacity), float(seconds)))
    if not phases or any(c < 0 or s <= 0 for c, s in phases):
        raise ValueError(f"bad schedule {text!r}")
    return phases


class Receiver:
    def __init__(self):
        self.arm(parse_schedule("1000000:1"), 0.0)

    def arm(self, phases, delay_s):
        self.phases = phases
        self.total_s = sum(s for _, s in phases)
        self.delay_s = delay_s
        self.start = None  # monotonic time of the first POST
        self.in_flight = 0
        self.max_in_flight = 0
        # arrivals during the schedule, by phase: (seconds into the phase, status)
        self.log = [[] for _ in phases]

    def phase_at(self, elapsed):
        """The phase index at `elapsed` seconds, or None once the schedule is over."""
        for i, (_, seconds) in enumerate(self.phases):
            if elapsed < seconds:
                return i, elapsed
            elapsed -= seconds
        return None, None

    def capacity_at(self, elapsed):
        i, _ = self.phase_at(elapsed)
        return self.phases[-1 if i is None else i][0]

    async def handle(self, request):
        await request.read()
        now = time.monotonic()
        if self.start is None:
            self.start = now
        elapsed = now - self.start
        i, into = self.phase_at(elapsed)
        if self.in_flight >= self.capacity_at(elapsed):
            if i is not None:
                self.log[i].append((into, 503))
            return web.Response(status=503, text="busy")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s > 0:
                await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        if i is not None:
            self.log[i].append((into, 200))
        return web.Response(text="ok")

    def stats(self, steady_s):
        phases = []
        for (capacity, seconds), log in zip(self.phases, self.log):
            ok = sum(1 for _, s in log if s == 200)
            busy = len(log) - ok
            ok_steady = sum(1 for t, s in log if s == 200 and t >= steady_s)
            busy_steady = sum(1 for t, s in log if s != 200 and t >= steady_s)
            phases.append({"capacity": capacity, "seconds": seconds, "ok": ok, "busy": busy,
                           "steady_seconds": max(seconds - steady_s, 0),
                           "ok_steady": ok_steady, "busy_steady": busy_steady})
        usage = resource.getrusage(resource.RUSAGE_SELF)
        elapsed = time.monotonic() - self.start if self.start is not None else 0
        return {"phases": phases, "max_in_flight": self.max_in_flight,
                "started": self.start is not None, "done": elapsed >= self.total_s,
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    r = Receiver()

    async def arm(request):
        try:
            phases = parse_schedule(request.query.get("schedule", "20:10"))
            delay_s = float(request.query.get("delay_ms", "20")) / 1000
        except ValueError as e:
            return web.Response(status=400, text=str(e))
        r.arm(phases, delay_s)
        return web.Response(text="armed")

    async def stats(request):
        return web.json_response(r.stats(float(request.query.get("steady", "3"))))

    async def state(_request):
        elapsed = time.monotonic() - r.start if r.start is not None else -1
        return web.Response(text=f"{elapsed:.3f} {r.total_s:.3f}\n")

    def write_port(port):
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, args.port_file)

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/_control/arm", arm)
    app.router.add_get("/_control/stats", stats)
    app.router.add_get("/_control/state", state)
    app.router.add_post("/{tail:.*}", r.handle)

    async def serve():
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        write_port(runner.addresses[0][1])
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
