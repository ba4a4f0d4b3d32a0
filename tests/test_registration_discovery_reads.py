"""Discovery (GET /csourceRegistrations) reads on a reader thread under the query deadline:
on the event loop, 20,000 registrations held every other request 0.6 s per query."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.ngsild import registrations as R
from cityhub.settings import Settings
from conftest import BASE, problem
from test_api_readers import Stall

REGS = f"{BASE}/csourceRegistrations"


def count_searches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every id a registered pattern is searched in one by one, from now on."""
    from cityhub.ngsild.query import pattern

    searched: list[str] = []
    real = pattern.Pattern.search

    def counting(self: Any, text: str) -> Any:
        searched.append(text)
        return real(self, text)

    monkeypatch.setattr(pattern.Pattern, "search", counting)
    return searched


def registration(i: int) -> dict[str, Any]:
    """A small registration of Room entities."""
    return {
        "id": f"urn:ngsi-ld:ContextSourceRegistration:{i}",
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Room", "idPattern": f"^urn:room:{i}"}]}],
        "endpoint": "http://csource.example",
    }


async def test_discovery_holds_up_no_other_request(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = await client.post(REGS, json=registration(1))
    assert r.status_code == 201, r.text
    stall = Stall(R.matches)
    monkeypatch.setattr(R, "matches", stall)
    discovery = asyncio.create_task(client.get(REGS, params={"type": "Room"}))
    assert await asyncio.to_thread(stall.started.wait, 5)
    try:
        r = await client.post(REGS, json=registration(2))
        assert r.status_code == 201, r.text
        r = await client.get(f"{REGS}/{registration(1)['id']}")
        assert r.status_code == 200, r.text
        assert not discovery.done()
    finally:
        stall.release.set()
    r = await discovery
    assert r.status_code == 200, r.text
    assert len(r.json()) == 2 or len(r.json()) == 1
    assert not stall.timed_out


@pytest.fixture
async def bounded(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    """A hub whose queries may read for one microsecond, holding 50 registrations."""
    app = create_app(Settings(db=str(tmp_path / "hub.db"), query_timeout=1e-6))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        for i in range(50):
            r = await client.post(REGS, json=registration(i))
            assert r.status_code == 201, r.text
        yield client, app
    app.state.store.close()


async def test_discovery_past_the_deadline_is_503(
    bounded: tuple[httpx.AsyncClient, Starlette],
) -> None:
    client, app = bounded
    body = problem(await client.get(REGS, params={"id": "urn:room:7", "type": "Room"}), 503)
    assert "CITYHUB_QUERY_TIMEOUT" in body["detail"]
    app.state.store.query_timeout = 30.0
    r = await client.get(REGS, params={"id": "urn:room:7", "type": "Room", "count": "true"})
    assert r.status_code == 200, r.text
    assert [d["id"] for d in r.json()] == [registration(7)["id"]]
    assert r.headers["NGSILD-Results-Count"] == "1"


async def test_pages_and_count_of_a_scan(bounded: tuple[httpx.AsyncClient, Starlette]) -> None:
    client, app = bounded
    app.state.store.query_timeout = 30.0
    params = {"type": "Room", "limit": "5", "offset": "45", "count": "true"}
    r = await client.get(REGS, params=params)
    assert r.status_code == 200, r.text
    assert [d["id"] for d in r.json()] == [registration(i)["id"] for i in range(45, 50)]
    assert r.headers["NGSILD-Results-Count"] == "50"


async def test_registered_id_patterns_stay_compiled(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """600 distinct registered idPatterns, more than the query patterns' cache holds (512),
    are compiled once, not on every query."""
    from cityhub.ngsild.query import pattern

    for r in range(6):
        doc = registration(r)
        doc["information"] = [
            {"entities": [{"type": "Room", "idPattern": f"^urn:room:{r}:{i}$"} for i in range(100)]}
        ]
        resp = await client.post(REGS, json=doc)
        assert resp.status_code == 201, resp.text
    params = {"id": "urn:room:5:99", "type": "Room"}
    r = await client.get(REGS, params=params)
    assert [d["id"] for d in r.json()] == [registration(5)["id"]]
    compiled: list[str] = []
    real = pattern.re2.compile

    def counting(text: str, *args: Any, **kwargs: Any) -> Any:
        compiled.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(pattern.re2, "compile", counting)
    r = await client.get(REGS, params=params)
    assert [d["id"] for d in r.json()] == [registration(5)["id"]]
    assert len(compiled) == 0, f"{len(compiled)} patterns compiled again"


IDS = [f"urn:room:{i}" for i in range(1, 7)] + ["urn:hall:1", "urn:room:1x"]
PATTERNS = [
    "^urn:room:1$",  # anchored: ^ and $ at each id's edges, not the joined text's
    "urn:room:1",
    r"\Aurn:room:2",  # \A and \z: searched id by id
    r"room:3\z",
    r"(?i-m)^URN:ROOM:4$",  # multi-line mode turned off again
    "(?s)1.urn",  # would match across two joined ids
    "1\nurn",
    "[^x]urn:hall",
    r"\burn:room:5\b",
    "^room",
    "6$",
    "x*",
]


@pytest.mark.parametrize("text", PATTERNS)
@pytest.mark.parametrize("ids", [IDS, IDS[1:], IDS[::-1], IDS[2:5], ["urn:room:1x"]])
def test_registered_patterns_answer_as_id_by_id(text: str, ids: list[str]) -> None:
    """One search over the joined ids gives the answer of a search of each id."""
    import re2

    doc = registration(0)
    doc["information"] = [{"entities": [{"type": "Room", "idPattern": text}]}]
    expected = any(re2.compile(text).search(i) for i in ids)
    assert R.matches(doc, R.RegistrationQuery(ids=tuple(ids))) is expected


async def test_many_queried_ids_are_searched_once_per_pattern(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each registered idPattern was searched id by id: 3,000 queried ids against 2,000
    registrations held a reader thread 34 s (503 at the deadline)."""
    for r in range(20):
        resp = await client.post(REGS, json=registration(r))
        assert resp.status_code == 201, resp.text
    searches = count_searches(monkeypatch)
    ids = [f"urn:hall:{i}" for i in range(3_000)] + ["urn:room:7", "urn:room:13"]
    resp = await client.get(REGS, params={"id": ",".join(ids)})
    assert resp.status_code == 200, resp.text
    assert [d["id"] for d in resp.json()] == [registration(i)["id"] for i in (1, 7, 13)]
    assert searches == [], f"{len(searches)} searches of one id"


async def test_patterns_that_could_span_two_ids_are_searched_once_too(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pattern able to match a newline found a match across two joined ids, and each such
    registration was then searched id by id: registrations of `9[^#]urn` brought back the
    34 s of one query with 3,000 ids ending in 9."""
    for r in range(20):
        doc = registration(r)
        doc["information"] = [{"entities": [{"type": "Room", "idPattern": f"{r}[^#]urn"}]}]
        resp = await client.post(REGS, json=doc)
        assert resp.status_code == 201, resp.text
    searches = count_searches(monkeypatch)
    ids = [f"urn:hall:{i}9" for i in range(3_000)] + ["urn:room:7/urn:x"]
    resp = await client.get(REGS, params={"id": ",".join(ids)})
    assert resp.status_code == 200, resp.text
    assert [d["id"] for d in resp.json()] == [registration(7)["id"]]
    assert searches == [], f"{len(searches)} searches of one id"
