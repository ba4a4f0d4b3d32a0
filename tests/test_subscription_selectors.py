"""EntitySelectors of one subscription: bounded at create and update (one of 20,000
idPatterns held the event loop 3.4 s to be created and 11 s for a batch of 100 entities of its
type), and arranged so that a change is not tested against each of them in turn."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.query.qlang import compile_regex
from cityhub.ngsild.query.typeexpr import parse_types
from cityhub.ngsild.subscription_selectors import MAX_SCANNED, MAX_SELECTORS
from cityhub.notify import subscription as subscription_module
from cityhub.notify.subscription import Compiled, Selection, Selector, compile_subscription
from conftest import BASE, problem

SUBS = f"{BASE}/subscriptions"
CSUBS = f"{BASE}/csourceSubscriptions"
SID = "urn:ngsi-ld:Subscription:selectors"
EX = "https://vocab.example.org/"
CACHE = ContextCache()


def body(entities: list[dict[str, Any]]) -> dict[str, Any]:
    """A subscription selecting these entities."""
    return {
        "id": SID,
        "type": "Subscription",
        "entities": entities,
        "notification": {"endpoint": {"uri": "http://localhost:1111/notify"}},
    }


TOO_MANY = [
    pytest.param([{"type": f"T{i}"} for i in range(MAX_SELECTORS + 1)], id="types"),
    pytest.param(
        [{"type": "T", "idPattern": f"^urn:x:{i}:"} for i in range(MAX_SCANNED + 1)],
        id="idPatterns",
    ),
    pytest.param([{"type": f"A{i}|B{i}"} for i in range(MAX_SCANNED + 1)], id="type-selections"),
]


@pytest.mark.parametrize("path", [SUBS, CSUBS])
@pytest.mark.parametrize("entities", TOO_MANY)
async def test_too_many_selectors_are_refused(
    client: httpx.AsyncClient, path: str, entities: list[dict[str, Any]]
) -> None:
    problem(await client.post(path, json=body(entities)), 400, "BadRequestData")
    assert (await client.get(path)).json() == []


async def test_too_many_selectors_are_refused_in_an_update(client: httpx.AsyncClient) -> None:
    assert (await client.post(SUBS, json=body([{"type": "T"}]))).status_code == 201
    many = [{"type": "T", "idPattern": f"^urn:x:{i}:"} for i in range(MAX_SCANNED + 1)]
    problem(await client.patch(f"{SUBS}/{SID}", json={"entities": many}), 400, "BadRequestData")
    assert (await client.get(f"{SUBS}/{SID}")).json()["entities"] == [{"type": "T"}]


async def test_selectors_within_the_bounds_are_taken(client: httpx.AsyncClient) -> None:
    entities = [{"type": f"T{i}"} for i in range(MAX_SELECTORS - MAX_SCANNED)]
    entities += [{"type": "T", "idPattern": f"^urn:x:{i}:"} for i in range(MAX_SCANNED)]
    entities[0] = {"type": "T", "id": "urn:x:by-id", "idPattern": "^urn:"}  # an id: looked up
    assert (await client.post(SUBS, json=body(entities))).status_code == 201


def compiled(entities: list[dict[str, Any]]) -> Compiled:
    """A compiled subscription of stored (expanded) selectors."""
    doc = {**body(entities), "type": "Subscription"}
    return compile_subscription("", doc, CACHE.compile, lambda *_: "")


def room(eid: str = "urn:ngsi-ld:Room:1", *types: str) -> dict[str, Any]:
    """A stored entity of these types (ex:Room by default)."""
    return {"id": eid, "type": [EX + t for t in types or ("Room",)], "attrs": {}}


def test_a_change_is_not_tested_against_each_type_selector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subscription of 1,000 type names: an entity of the last one is found by its type, not
    after testing the 999 before it."""
    sub = compiled([{"type": EX + f"T{i}"} for i in range(MAX_SELECTORS)])
    calls = 0
    matches = Selector.matches

    def counted(self: Selector, doc: dict[str, Any]) -> bool:
        nonlocal calls
        calls += 1
        return matches(self, doc)

    monkeypatch.setattr(subscription_module.Selector, "matches", counted)
    assert sub.selects(room("urn:x:1", f"T{MAX_SELECTORS - 1}"))
    assert not sub.selects(room("urn:x:2", "Other"))
    assert calls <= 2, calls


NAMES = st.sampled_from(["A", "B", "C"])
SELECTOR = st.fixed_dictionaries(
    {"type": st.sampled_from(["A", "B", "A|C", "A;B", "(B;C),A"])},
    optional={
        "id": st.sampled_from(["urn:x:1", "urn:x:2"]),
        "idPattern": st.sampled_from(["^urn:x:1$", "^urn:y:", ".*"]),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    selectors=st.lists(SELECTOR, min_size=0, max_size=6),
    eid=st.sampled_from(["urn:x:1", "urn:x:2", "urn:y:3"]),
    types=st.lists(NAMES, min_size=1, max_size=3, unique=True),
    as_list=st.booleans(),
)
def test_the_arrangement_selects_what_the_selectors_do(
    selectors: list[dict[str, str]], eid: str, types: list[str], as_list: bool
) -> None:
    """Looked up or tested, an entity is selected exactly when one of the selectors selects
    it (an entity's type may also be stored as one string)."""
    parsed = [
        Selector(
            id=s.get("id"),
            pattern=compile_regex(s["idPattern"]) if "idPattern" in s else None,
            types=parse_types(s["type"]),
        )
        for s in selectors
    ]
    doc: dict[str, Any] = {"id": eid, "type": types if as_list or len(types) > 1 else types[0]}
    assert Selection.of(parsed).selects(doc) == any(s.matches(doc) for s in parsed)
