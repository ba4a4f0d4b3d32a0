"""The subscription index, kept up one subscription at a time and narrowed by type, id
pattern and watched attribute, still offers every subscription a change notifies.

Before, every create, update or delete of a subscription rebuilt its tenant's index (filling
10,000 took about a minute of loop time), and a selector with a type and an idPattern, like
a subscription that watched other attributes, was tested on every change of the tenant.
"""

from __future__ import annotations

import random
from typing import Any

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.subscriptions import TRIGGERS as SUBSCRIPTION_TRIGGERS
from cityhub.notify.events import ChangeEvents
from cityhub.notify.index import SubscriptionIndex
from cityhub.notify.subscription import Compiled, compile_subscription

EX = "https://vocab.example.org/"
CACHE = ContextCache()
TYPES = ["A", "B", "C"]
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"  # where q's terms expand
ATTRS = [DEFAULT + a for a in ("p", "q", "r")]
IDS = [f"urn:ngsi-ld:{t}:{n}" for t in TYPES for n in (1, 2)]
TRIGGERS = list(SUBSCRIPTION_TRIGGERS)


def _selector(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["type", "id", "pattern", "or", "and"])
    typ = EX + rng.choice(TYPES)
    if kind == "id":
        return {"id": rng.choice(IDS), "type": typ}
    if kind == "pattern":
        return {"idPattern": f"urn:ngsi-ld:{rng.choice(TYPES)}:{rng.choice('12')}", "type": typ}
    if kind == "or":
        return {"type": f"{typ}|{EX}{rng.choice(TYPES)}"}
    if kind == "and":
        return {"type": f"{typ};{EX}{rng.choice(TYPES)}"}
    return {"type": typ}


def random_sub(rng: random.Random, n: int) -> Compiled:
    """A subscription with random selectors (or none), watchedAttributes, triggers and q."""
    doc: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Subscription:{n}",
        "type": "Subscription",
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
    if rng.random() < 0.85:
        doc["entities"] = [_selector(rng) for _ in range(rng.choice([1, 1, 2]))]
    if rng.random() < 0.5:
        doc["watchedAttributes"] = rng.sample(ATTRS, rng.choice([1, 2]))
    if rng.random() < 0.5:
        doc["notificationTrigger"] = rng.sample(TRIGGERS, rng.choice([1, 2, 3]))
    if rng.random() < 0.3:
        doc["q"] = f"p>{rng.choice([0, 5])}"
    return compile_subscription("", doc, CACHE.compile, lambda *_: "")


def random_entity(rng: random.Random, eid: str) -> dict[str, Any]:
    """A stored entity of this id, of its own type and sometimes one more, with some of the
    attributes at random values."""
    types = [EX + eid.split(":")[2]]
    if rng.random() < 0.3:
        types.append(EX + rng.choice(TYPES))
    attrs = {
        a: [{"type": "Property", "value": rng.choice([1, 9])}] for a in ATTRS if rng.random() < 0.6
    }
    return {"id": eid, "type": list(dict.fromkeys(types)), "attrs": attrs, "modifiedAt": "t"}


def random_change(rng: random.Random) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A create, update or delete of one entity."""
    eid = rng.choice(IDS)
    kind = rng.choice(["create", "update", "update", "delete"])
    before = None if kind == "create" else random_entity(rng, eid)
    after = None if kind == "delete" else random_entity(rng, eid)
    return before, after


def offered(index: SubscriptionIndex, events: ChangeEvents) -> set[str]:
    """The ids of the subscriptions the index offers for a change, as the notifier asks."""
    before, after = events.before, events.after
    changed = events.changes if before is not None and after is not None else None
    return {s.id for s in index.candidates(before, after, changed=changed)}


def test_every_notified_subscription_is_a_candidate() -> None:
    """Whatever the selectors, watched attributes and triggers: each subscription whose event
    matching finds (shape) is among the candidates, and no candidate comes twice."""
    rng = random.Random(7)
    for _ in range(60):
        subs = [random_sub(rng, n) for n in range(rng.randint(1, 25))]
        index = SubscriptionIndex(subs)
        for _ in range(40):
            events = ChangeEvents(*random_change(rng), "now")
            before, after = events.before, events.after
            changed = events.changes if before is not None and after is not None else None
            got = index.candidates(before, after, changed=changed)
            assert len(got) == len({s.id for s in got})
            notified = {s.id for s in subs if events.shape(s) is not None}
            assert notified <= {s.id for s in got}, (before, after)


def test_the_index_narrows_by_type_pattern_and_watched_attribute() -> None:
    """A selector with a type and an idPattern, and a subscription watching attributes a
    change leaves alone, are not offered a change of another type or of other attributes."""
    pattern = compile_subscription(
        "",
        {
            "id": "urn:ngsi-ld:Subscription:pattern",
            "entities": [{"type": EX + "A", "idPattern": "urn:ngsi-ld:A:.*"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
        },
        CACHE.compile,
        lambda *_: "",
    )
    watcher = compile_subscription(
        "",
        {
            "id": "urn:ngsi-ld:Subscription:watcher",
            "entities": [{"type": EX + "B"}],
            "watchedAttributes": [ATTRS[1]],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
        },
        CACHE.compile,
        lambda *_: "",
    )
    index = SubscriptionIndex([pattern, watcher])
    b_old = {"id": IDS[2], "type": [EX + "B"], "attrs": {ATTRS[0]: [{"value": 1}]}}
    b_new = {"id": IDS[2], "type": [EX + "B"], "attrs": {ATTRS[0]: [{"value": 2}]}}
    assert index.candidates(b_old, b_new, changed=[ATTRS[0]]) == []
    assert index.candidates(b_old, b_new, changed=[ATTRS[1]]) == [watcher]
    assert index.candidates(None, b_new) == [], "a create with no watched attribute"
    a_doc = {"id": IDS[0], "type": [EX + "A"], "attrs": {}}
    assert index.candidates(None, a_doc) == [pattern]


def test_an_index_kept_up_in_place_is_the_one_built_afresh() -> None:
    """After random creates, updates (a new version under the same id) and deletes, the
    index kept up one subscription at a time offers what one built from the survivors does,
    for every kind of change."""
    rng = random.Random(11)
    for _ in range(30):
        kept = SubscriptionIndex()
        live: dict[str, Compiled] = {}
        for _ in range(80):
            n = rng.randrange(30)
            if rng.random() < 0.3 and live:
                sid = rng.choice(sorted(live))
                kept.remove(sid)
                del live[sid]
            else:
                sub = random_sub(rng, n)
                kept.add(sub)
                live[sub.id] = sub
        fresh = SubscriptionIndex(live.values())
        assert len(kept) == len(fresh) == len(live)
        assert kept.by_id.keys() == fresh.by_id.keys()
        assert kept.by_type.keys() == fresh.by_type.keys()
        for _ in range(40):
            events = ChangeEvents(*random_change(rng), "now")
            assert offered(kept, events) == offered(fresh, events)
        for eid in [None, *IDS]:
            for types in (None, [EX + "A"], [EX + "B", EX + "C"]):
                assert kept.weight(eid, types) == fresh.weight(eid, types)
