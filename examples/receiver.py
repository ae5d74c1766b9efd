#!/usr/bin/env python3
"""A tiny HTTP receiver for trying ferry: prints every request it gets and answers 200.

Usage: receiver.py PORT [--fail-every N]   (--fail-every answers 500 to every Nth request,
to watch ferry retry)
"""
import argparse
import sys

from aiohttp import web


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--fail-every", type=int, default=0)
    args = parser.parse_args()
    count = 0

    async def handle(request):
        nonlocal count
        count += 1
        body = await request.read()
        if args.fail_every and count % args.fail_every == 0:
            print(f"receiver: {request.method} {request.path} -> 500 (on purpose)", flush=True)
            return web.Response(status=500, text="failing on purpose\n")
        key = request.headers.get("Idempotency-Key", "-")
        print(f"receiver: {request.method} {request.path} idempotency-key={key} "
              f"body={body.decode('utf-8', 'replace')}", flush=True)
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    print(f"receiver: listening on http://127.0.0.1:{args.port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, handle_signals=True)


if __name__ == "__main__":
    sys.exit(main())
