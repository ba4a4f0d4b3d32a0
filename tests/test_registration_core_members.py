"""A context source property may not sit under a core member's IRI: it replaced the member in
every answer (a forged endpoint, an information that was no array)."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import problem
from test_registration_bounds import NGSI_LD, REGS, body


@pytest.mark.parametrize("member", ["endpoint", "information", "mode", "operations", "location"])
async def test_a_property_under_a_core_members_iri_is_400(
    client: httpx.AsyncClient, member: str
) -> None:
    resp = await client.post(REGS, json=body(**{NGSI_LD + member: "forged"}))
    problem(resp, 400, "BadRequestData")
    resp = await client.post(REGS, json=body())
    assert resp.status_code == 201, resp.text
    resp = await client.patch(f"{REGS}/{body()['id']}", json={NGSI_LD + member: "forged"})
    problem(resp, 400, "BadRequestData")
    got = (await client.get(f"{REGS}/{body()['id']}")).json()
    assert got["endpoint"] == "http://real.example"


async def test_a_term_for_a_core_iri_is_400(client: httpx.AsyncClient) -> None:
    doc = body(ep="http://fake.example")
    doc["@context"] = [
        {"ep": NGSI_LD + "endpoint"},
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
    ]
    resp = await client.post(
        REGS, content=json.dumps(doc), headers={"Content-Type": "application/ld+json"}
    )
    problem(resp, 400, "BadRequestData")


def test_a_stored_property_never_hides_a_member() -> None:
    from cityhub.ngsild.context import TermMap
    from cityhub.ngsild.registrations import render_registration

    tm = TermMap(terms={"endpoint": NGSI_LD + "endpoint"})
    doc = {
        "id": "urn:r",
        "type": "ContextSourceRegistration",
        "information": [{"propertyNames": [NGSI_LD + "p"]}],
        "endpoint": "http://real.example",
        "props": {NGSI_LD + "endpoint": "http://fake.example"},
    }
    assert render_registration(doc, tm)["endpoint"] == "http://real.example"
