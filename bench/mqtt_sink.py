"""The baseline of the IoT benchmark (g): a bare aiomqtt subscriber that discards messages.

`python -m bench.mqtt_sink` reads one job (JSON) on stdin, subscribes exactly as the hub does
(`$share/{group}/{root}/+/+/attrs`, QoS 1; the root the run's CITYHUB_MQTT_TOPIC_ROOT), prints `ready` once subscribed, then counts the
messages until none came for `idle` seconds (or `deadline` passed) and writes one result
(JSON) to the job's `out` file: one full-run result on stdout once arrived broken in two
(2026-12-06), and a file cannot be interleaved with anything else the process prints. With
`latency`, it also reads each payload's send time (`ts`) and reports the publish-to-receive
latency, the floor under the hub's device-to-stored latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import orjson

from bench.mqtt_load import topic_root


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Receive until idle; count (and time) what arrived."""
    import aiomqtt

    idle, deadline = float(job.get("idle", 1.5)), time.time() + float(job.get("deadline", 120))
    latency = bool(job.get("latency"))
    seen = {"received": 0, "first": 0.0, "last": 0.0}
    lat_ms: list[float] = []
    cpu0 = time.process_time()

    async def consume(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            now = time.time()
            seen["received"] += 1
            seen["first"] = seen["first"] or now
            seen["last"] = now
            if latency:
                payload = message.payload
                if isinstance(payload, bytes):
                    with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
                        lat_ms.append((now - orjson.loads(payload)["ts"]) * 1000)

    async with aiomqtt.Client(job["host"], job["port"], identifier=job["client_id"]) as client:
        await client.subscribe(f"$share/{job['group']}/{topic_root()}/+/+/attrs", qos=1)
        print("ready", flush=True)
        task = asyncio.create_task(consume(client))
        while True:  # a watchdog, so the receiving loop itself stays bare
            await asyncio.sleep(0.1)
            now = time.time()
            if now > deadline or (seen["received"] and now - seen["last"] > idle):
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    received, first, last = int(seen["received"]), seen["first"], seen["last"]
    return {
        "received": received,
        "first": first,
        "last": last,
        "lat_ms": lat_ms,
        "cpu_s": time.process_time() - cpu0,
    }


def main() -> None:
    job = json.loads(sys.stdin.readline())
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a hub dependency
        pass
    result = asyncio.run(run_job(job))
    with open(job["out"], "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
