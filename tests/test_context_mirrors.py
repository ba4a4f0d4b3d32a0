"""CITYHUB_CONTEXT_MIRRORS: an offline site serves a remote @context from a local file."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from cityhub.api.app import create_app
from cityhub.settings import Settings

REMOTE = "https://contexts.invalid/city.jsonld"


async def test_mirrored_context_is_read_from_the_file(tmp_path: Path) -> None:
    ctx_file = tmp_path / "city.jsonld"
    ctx_file.write_text(json.dumps({"@context": {"Lamp": "https://city.example/Lamp"}}))
    settings = Settings(db=str(tmp_path / "hub.db"), context_mirrors={REMOTE: str(ctx_file)})
    app = create_app(settings)
    link = f'<{REMOTE}>; rel="http://www.w3.org/ns/json-ld#context"'
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hub"
    ) as c:
        resp = await c.post(
            "/ngsi-ld/v1/entities", json={"id": "urn:x:1", "type": "Lamp"}, headers={"Link": link}
        )
        assert resp.status_code == 201, resp.text
        plain = await c.get("/ngsi-ld/v1/entities/urn:x:1")
        assert plain.json()["type"] == "https://city.example/Lamp", "expanded with the mirror"


async def test_missing_mirror_file_is_503(tmp_path: Path) -> None:
    settings = Settings(
        db=str(tmp_path / "hub.db"), context_mirrors={REMOTE: str(tmp_path / "absent.jsonld")}
    )
    app = create_app(settings)
    link = f'<{REMOTE}>; rel="http://www.w3.org/ns/json-ld#context"'
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hub"
    ) as c:
        resp = await c.get("/ngsi-ld/v1/entities?type=Lamp", headers={"Link": link})
    assert resp.status_code == 503
    assert resp.json()["type"].endswith("LdContextNotAvailable")
