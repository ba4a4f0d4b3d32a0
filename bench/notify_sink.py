"""Notification receivers for bench/notify.py, as their own process.

`python -m bench.notify_sink serve PORT HUNG_PORT`: answers 200 to every POST on PORT and
counts them (GET /stats reports the count and the first/last arrival times); HUNG_PORT
accepts connections and never answers (a dead receiver that holds its caller until timeout).

`python -m bench.notify_sink blast URL ENDPOINTS SECONDS BYTES`: the baseline, a bare aiohttp
client that POSTs BYTES-byte JSON bodies to ENDPOINTS paths under URL, one request in flight
per path, for SECONDS; prints {"sent": n, "seconds": s} as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp
from aiohttp import web


def serve(port: int, hung_port: int) -> None:
    """Run the counting receiver and the hung one until killed."""
    stats = {"total": 0, "first": 0.0, "last": 0.0}

    async def notify(request: web.Request) -> web.Response:
        await request.read()
        now = time.time()
        if not stats["total"]:
            stats["first"] = now
        stats["total"] += 1
        stats["last"] = now
        return web.Response()

    async def report(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def reset(request: web.Request) -> web.Response:
        stats.update(total=0, first=0.0, last=0.0)
        return web.json_response(stats)

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/stats", report)
        app.router.add_post("/reset", reset)
        app.router.add_post("/{tail:.*}", notify)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        await asyncio.start_server(hang, "127.0.0.1", hung_port)
        print("ready", flush=True)
        await asyncio.Event().wait()

    _run(main())


def blast(url: str, endpoints: int, seconds: float, size: int) -> None:
    """POST as fast as one request in flight per endpoint allows."""
    body = json.dumps({"type": "Notification", "pad": "x" * max(0, size - 40)}).encode()
    sent = 0

    async def main() -> None:
        nonlocal sent
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            deadline = time.perf_counter() + seconds

            async def loop(n: int) -> None:
                nonlocal sent
                headers = {"Content-Type": "application/json"}
                while time.perf_counter() < deadline:
                    async with session.post(f"{url}/r{n}", data=body, headers=headers) as resp:
                        await resp.read()
                    sent += 1

            start = time.perf_counter()
            await asyncio.gather(*(loop(n) for n in range(endpoints)))
            print(json.dumps({"sent": sent, "seconds": time.perf_counter() - start}))

    _run(main())


def _run(coro: object) -> None:
    try:
        import uvloop

        uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        asyncio.run(coro)  # type: ignore[arg-type]


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    else:
        blast(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
