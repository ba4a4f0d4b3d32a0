"""The Link of a notification names a URL its receiver can fetch: the address the subscription
was made (or last changed) through, never the address the hub binds (0.0.0.0 under
--host 0.0.0.0)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE, create
from receivers import Receiver, wait_for

SID = "urn:ngsi-ld:Subscription:link"
PUBLIC = "http://hub.example:8080"


@pytest.fixture
async def wide(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A hub bound to every interface, reached by its clients under a public name."""
    app = create_app(Settings(db=str(tmp_path / "hub.db"), host="0.0.0.0", port=1026))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as client:
        yield client
        await app.state.notifier.close()
    app.state.store.close()


async def test_link_after_json_ld_context_null_names_the_requests_host(
    wide: httpx.AsyncClient, receiver: Receiver
) -> None:
    inline = {"Room": "https://example.org/Room", "temperature": "https://example.org/t"}
    body = {
        "id": SID,
        "type": "Subscription",
        "entities": [{"type": "Room"}],
        "notification": {"endpoint": {"uri": receiver.url()}},
        "@context": [inline, "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"],
    }
    headers = {"Content-Type": "application/ld+json"}
    resp = await wide.post(f"{BASE}/subscriptions", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    resp = await wide.patch(f"{BASE}/subscriptions/{SID}", json={"jsonldContext": None})
    assert resp.status_code == 204, resp.text
    room = {
        "id": "urn:ngsi-ld:Room:1",
        "type": "https://example.org/Room",
        "https://example.org/t": {"type": "Property", "value": 1},
    }
    await create(wide, room)
    got = await wait_for(lambda: receiver.received(), what="the notification")
    link = got[0].headers["Link"]
    assert link.startswith(f"<{PUBLIC}/ngsi-ld/v1/jsonldContexts/"), link
    assert got[0].body["data"][0]["type"] == "Room"
