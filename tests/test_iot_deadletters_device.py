"""One device's dead letters can be erased alone: they keep its raw payloads (a resident's
readings), and `DELETE /iot/v1/deadletters?device=` used to ignore `device` and erase every
device's letters of the tenant."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.cli import main
from cityhub.ingest.agent.payload import Raw
from cityhub.ingest.agent.reasons import Rejected
from cityhub.settings import Settings
from conftest import free_port
from test_serve import process, wait_healthy

CITY = {"NGSILD-Tenant": "city"}


async def test_one_devices_letters_go_and_the_others_stay(tmp_path: Path) -> None:
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    letters = app.state.iot.letters
    refused = Rejected("bad_value", "test")
    written = [
        (tenant, letters.letter(Raw("http", "", device, b'{"hr": "x"}'), refused))
        for tenant, device in (
            ("city", "wearable-1"),
            ("city", "wearable-2"),
            ("city", "wearable-1"),
            ("other", "wearable-1"),
            (None, "wearable-1"),
        )
    ]
    await app.state.committer.run(lambda: letters.write(written))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        gone = await client.delete(
            "/iot/v1/deadletters", params={"device": "wearable-1"}, headers=CITY
        )
        assert gone.status_code == 200, gone.text
        assert gone.json() == {"deleted": 2}
        kept = await client.get("/iot/v1/deadletters", headers=CITY)
        assert [d["device"] for d in kept.json()] == ["wearable-2"]
        other = await client.get("/iot/v1/deadletters", headers={"NGSILD-Tenant": "other"})
        assert [d["device"] for d in other.json()] == ["wearable-1"], "another tenant's stay"
        unrouted = await client.get("/iot/v1/deadletters", params={"unrouted": "true"})
        assert [d["device"] for d in unrouted.json()] == ["wearable-1"]
        gone = await client.delete(
            "/iot/v1/deadletters", params={"unrouted": "true", "device": "wearable-1"}
        )
        assert gone.json() == {"deleted": 1}, gone.text
        typo = await client.delete("/iot/v1/deadletters", params={"devise": "x"}, headers=CITY)
        assert typo.status_code == 400, "an unknown parameter erases nothing"
        kept = await client.get("/iot/v1/deadletters", headers=CITY)
        assert [d["device"] for d in kept.json()] == ["wearable-2"]
    app.state.store.close()


def test_the_command_line_erases_one_devices_letters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cityhub iot deadletters clear --device ID` against a served hub, letters made by
    the HTTP southbound."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(["serve", "--port", str(port), "--db", str(tmp_path / "hub.db")]) as proc:
        wait_healthy(proc, url)
        with httpx.Client(base_url=url, timeout=5, headers=CITY) as client:
            for device in ("wearable-1", "wearable-2"):
                body = {
                    "id": device,
                    "entityType": "Wearable",
                    "protocol": "http",
                    "apikey": f"key-of-{device}-0123456789",
                    "mapping": {"attributes": {"hr": {"name": "heartRate", "type": "number"}}},
                }
                assert client.post("/iot/v1/devices", json=body).status_code == 201
                sent = client.post(
                    "/iot/v1/json",
                    params={"k": f"key-of-{device}-0123456789", "i": device},
                    json={"hr": "not a number"},
                )
                assert sent.status_code == 400, sent.text
        code = main(["iot", "deadletters", "clear", "--device", "wearable-1", "--url", url,
                     "--tenant", "city"])  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 0, err
        assert json.loads(out) == {"deleted": 1}
        code = main(["iot", "deadletters", "list", "--url", url, "--tenant", "city"])
        out, err = capsys.readouterr()
        assert [d["device"] for d in json.loads(out)] == ["wearable-2"]
