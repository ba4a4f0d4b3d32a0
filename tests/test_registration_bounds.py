"""How much a context source registration may hold: its lists are bounded (a registration is
matched in Python on every discovery query and csourceSubscription)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, problem

REGS = f"{BASE}/csourceRegistrations"
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"


def body(**members: Any) -> dict[str, Any]:
    """A valid registration with members added or replaced."""
    doc: dict[str, Any] = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:b1",
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Room"}]}],
        "endpoint": "http://real.example",
    }
    doc.update(members)
    return doc


@pytest.mark.parametrize(
    "information",
    [
        pytest.param([{"propertyNames": [f"p{i}" for i in range(1001)]}], id="names"),
        pytest.param(
            [{"entities": [{"type": "T", "id": f"urn:x:{i}"} for i in range(1001)]}], id="ids"
        ),
        pytest.param([{"entities": [{"type": [f"T{i}" for i in range(1001)]}]}], id="types"),
        pytest.param(
            [{"entities": [{"type": "T", "idPattern": f"^urn:{i}"} for i in range(101)]}],
            id="patterns",
        ),
        pytest.param([{"propertyNames": ["p"]}] * 1001, id="items"),
    ],
)
async def test_too_much_information_is_400(
    client: httpx.AsyncClient, information: list[Any]
) -> None:
    resp = await client.post(REGS, json=body(information=information))
    detail = problem(resp, 400, "BadRequestData")["detail"]
    assert "at most" in detail
    resp = await client.post(REGS, json=body())
    assert resp.status_code == 201, resp.text
    resp = await client.patch(f"{REGS}/{body()['id']}", json={"information": information})
    problem(resp, 400, "BadRequestData")


async def test_at_the_bounds_is_accepted(client: httpx.AsyncClient) -> None:
    information = [
        {
            "entities": [{"type": "T", "idPattern": f"^urn:{i}"} for i in range(100)],
            "propertyNames": [f"p{i}" for i in range(899)],
        }
    ]
    resp = await client.post(REGS, json=body(information=information))
    assert resp.status_code == 201, resp.text
