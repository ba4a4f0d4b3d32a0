"""How many language ranges one `lang` may name, and how long each may be (probe
queryformats, finding 1, 2026-12-08): the list was unbounded and walked again for every
LanguageProperty rendered, so a 22 KB `lang` of 3,000 tags held a 1,000-entity query for
9.4 s of CPU; one tag of 10,000 subtags, looked up prefix by prefix, held a 50-entity Query
for 6 s. A longer list or range is a 400, and its detail quotes only the start of it."""

from __future__ import annotations

import httpx
import pytest

from cityhub.ngsild.languages import MAX_RANGE_CHARS, MAX_RANGES
from conftest import BASE, create, get_entity, problem

EID = "urn:ngsi-ld:Sign:r1"


def ranges(n: int, last: str = "de") -> str:
    """n language ranges none of the sign's languages match, but the last."""
    return ",".join([f"x-r{i}" for i in range(n - 1)] + [last])


@pytest.fixture
async def sign(client: httpx.AsyncClient) -> None:
    name = {"type": "LanguageProperty", "languageMap": {"en": "Stop", "de": "Halt"}}
    await create(client, {"id": EID, "type": "Sign", "name": name})


async def test_the_most_ranges_a_lang_may_name_are_all_read(
    client: httpx.AsyncClient, sign: None
) -> None:
    got = await get_entity(client, EID, {"lang": ranges(MAX_RANGES), "format": "keyValues"})
    assert got["name"] == "Halt"


@pytest.mark.parametrize("where", ["query", "entity", "body"])
async def test_a_lang_of_more_ranges_is_refused_without_echoing_it(
    client: httpx.AsyncClient, sign: None, where: str
) -> None:
    lang = ranges(MAX_RANGES + 1)
    if where == "query":
        resp = await client.get(f"{BASE}/entities", params={"type": "Sign", "lang": lang})
    elif where == "entity":
        resp = await client.get(f"{BASE}/entities/{EID}", params={"lang": lang})
    else:
        body = {"type": "Query", "entities": [{"type": "Sign"}], "lang": ranges(20_000)}
        resp = await client.post(f"{BASE}/entityOperations/query", json=body)
    detail = problem(resp, 400, "BadRequestData")["detail"]
    assert f"at most {MAX_RANGES}" in detail
    assert len(detail) < 1_000


async def test_a_subscription_s_lang_is_bounded_alike(client: httpx.AsyncClient) -> None:
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Sign"}],
        "lang": ranges(MAX_RANGES + 1),
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
    resp = await client.post(f"{BASE}/subscriptions", json=sub)
    assert f"at most {MAX_RANGES}" in problem(resp, 400, "BadRequestData")["detail"]


async def test_a_long_range_is_read_and_a_longer_one_refused(
    client: httpx.AsyncClient, sign: None
) -> None:
    longest = "de-" + "-".join(["abcdefgh"] * 20)[: MAX_RANGE_CHARS - 3]
    got = await get_entity(client, EID, {"lang": f"{longest};q=0.9", "format": "keyValues"})
    assert got["name"] == "Halt"  # found by lookup, subtag after subtag: de
    for lang in (longest + "x", "de" + "-abcdefgh" * 10_000):
        body = {"type": "Query", "entities": [{"type": "Sign"}], "lang": lang}
        resp = await client.post(f"{BASE}/entityOperations/query", json=body)
        detail = problem(resp, 400, "BadRequestData")["detail"]
        assert f"at most {MAX_RANGE_CHARS} characters" in detail
        assert len(detail) < 1_000
