"""A file size limit (`ulimit -f`, systemd's LimitFSIZE=) or a disk quota refuses writes
as a full disk does: 503 with Retry-After, nothing stored, no traceback per request, and
/health names the limit. SQLite calls it "disk I/O error", so the hub answered 500."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Runs in a child process: the limit applies to every file the process writes, and the
# test runner's own output may be a file past it.
CHILD = r"""
import asyncio, json, logging, resource, sys
import httpx
from cityhub.api.app import create_app
from cityhub.settings import Settings

BASE = "/ngsi-ld/v1"
tracebacks = []
class Catch(logging.Handler):
    def emit(self, record):
        if record.exc_info:
            tracebacks.append(record.getMessage())
logging.getLogger().addHandler(Catch())

async def main():
    app = create_app(Settings(db=sys.argv[1]))
    pad = "x" * 1500
    out = {"stored": []}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://hub"
    ) as client:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
        refused = None
        for n in range(3000):
            body = {"id": f"urn:ngsi-ld:Note:{n}", "type": "Note", "text": pad}
            resp = await client.post(f"{BASE}/entities", json=body)
            if resp.status_code != 201:
                refused = (n, resp)
                break
            out["stored"].append(n)
        n, resp = refused
        out["status"] = resp.status_code
        out["detail"] = resp.json().get("detail")
        out["retry_after"] = resp.headers.get("retry-after")
        for again in range(10):
            await client.post(f"{BASE}/entities", json={"id": f"urn:x:{again}", "type": "Note",
                                                        "text": pad})
        out["health"] = (await client.get("/health")).json()
        out["refused_found"] = (await client.get(f"{BASE}/entities/urn:ngsi-ld:Note:{n}")).status_code
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        resp = await client.post(f"{BASE}/entities", json={"id": "urn:after", "type": "Note"})
        out["after"] = resp.status_code
    app.state.store.close()
    out["tracebacks"] = len(tracebacks)
    print(json.dumps(out))

asyncio.run(main())
"""


def test_a_file_size_limit_is_a_503_that_stores_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "hub.db")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["stored"], "writes went in before the limit was reached"
    assert out["status"] == 503, out
    assert "storage is full" in out["detail"] and out["retry_after"] == "60", out
    assert out["refused_found"] == 404, "nothing of the refused write is stored"
    assert out["tracebacks"] == 0, "a refusal is no unexpected error"
    health = out["health"]
    assert health["status"] == "degraded", health
    assert "ulimit -f" in health["reason"] and "1,048,576 bytes" in health["reason"], health
    assert out["after"] == 201, "writes resume once the limit is lifted, without a restart"
