"""The subscription index: the cheap pre-check never rules out a subscription that matching
would have considered, and the writer tells it the types of a change only when it knows them."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.notify.index import SubscriptionIndex
from cityhub.notify.subscription import Compiled, compile_subscription
from cityhub.store.base import Change, OutboxItem
from cityhub.store.sqlite import SqliteStore

EX = "https://vocab.example.org/"
CACHE = ContextCache()
IDS = ["urn:ngsi-ld:A:1", "urn:ngsi-ld:B:2"]
TYPES = [EX + "A", EX + "B", EX + "C"]


def sub(n: int, **selector: Any) -> Compiled:
    """A compiled subscription with one EntitySelector."""
    doc = {
        "id": f"urn:ngsi-ld:Subscription:{n}",
        "type": "Subscription",
        "entities": [selector],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
    return compile_subscription("", doc, CACHE.compile, lambda *_: "")


SUBS = [
    sub(1, type=EX + "A"),
    sub(2, id=IDS[1], type=EX + "B"),
    sub(3, idPattern="urn:ngsi-ld:A:.*", type=EX + "C"),
    sub(4, type=f"{EX}A|{EX}C"),
]


def test_the_precheck_never_rules_out_a_candidate() -> None:
    """Every subset of subscriptions, every id and every before/after combination of types:
    when may_concern says no, matching finds no candidate either."""
    states = [[t] for t in TYPES] + [TYPES[:2], []]
    for size in range(len(SUBS) + 1):
        for subs in itertools.combinations(SUBS, size):
            index = SubscriptionIndex(list(subs))
            for eid, before, after in itertools.product(IDS, states, states):
                docs = [{"id": eid, "type": t} if t else None for t in (before, after)]
                types = frozenset(before) | frozenset(after)
                if not index.may_concern(eid, types):
                    assert index.candidates(*docs) == [], (subs, eid, before, after)


class Sink:
    """Keeps the changes the store hands over."""

    def __init__(self) -> None:
        self.changes: list[Change] = []

    def wants(self, tenant: str) -> bool:
        return True

    def outbox_items(self, tenant: str, changes: list[Change]) -> list[OutboxItem]:
        self.changes += changes
        return []

    def rolled_back(self, items: list[OutboxItem]) -> None:
        pass

    def committed(self, items: list[OutboxItem]) -> None:
        pass


def test_a_change_carries_its_types_only_when_they_are_certain(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    sink = store.sink = Sink()
    service = EntityService(store)
    tm = CACHE.core
    eid = "urn:ngsi-ld:A:1"
    default = "https://uri.etsi.org/ngsi-ld/default-context/"

    def last() -> frozenset[str] | None:
        assert sink.changes, "the write handed over a change"
        change = sink.changes.pop()
        assert change.eid == eid and not sink.changes
        return change.types

    service.create("", {"id": eid, "type": "A", "v": {"type": "Property", "value": 1}}, tm)
    assert last() == {default + "A"}
    service.update("", eid, {"v": {"type": "Property", "value": 2}}, tm)
    assert last() == {default + "A"}, "an attribute update keeps the types"
    service.merge("", eid, {"type": ["A", "B"]}, tm)
    assert last() is None, "the types changed: the notifier must read both documents"
    service.replace("", eid, {"id": eid, "type": "B"}, tm)
    assert last() is None, "a replace may change the types"
    service.delete("", eid)
    assert last() is None
    store.close()
