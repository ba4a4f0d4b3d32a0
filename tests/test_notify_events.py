"""Which trigger a change fires for a subscription, and the entity its notification carries."""

from __future__ import annotations

from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.notify.events import attribute_changes, event_for
from cityhub.notify.subscription import Compiled, compile_subscription

EX = "https://vocab.example.org/"
NOW = "2026-01-01T00:00:00.000000Z"
CACHE = ContextCache()


def sub(**members: Any) -> Compiled:
    """A compiled subscription to ex:Room entities (stored form: IRIs)."""
    doc = {
        "id": "urn:ngsi-ld:Subscription:t",
        "type": "Subscription",
        "entities": [{"type": EX + "Room"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
        **members,
    }
    return compile_subscription("", doc, CACHE.compile, lambda *_: "")


def entity(**attrs: list[dict[str, Any]]) -> dict[str, Any]:
    """A stored Room with the given attributes (names get the ex: prefix)."""
    return {
        "id": "urn:ngsi-ld:Room:1",
        "type": [EX + "Room"],
        "createdAt": NOW,
        "modifiedAt": NOW,
        "attrs": {EX + k: v for k, v in attrs.items()},
    }


def prop(value: Any, dataset: str | None = None) -> dict[str, Any]:
    """A Property instance."""
    out: dict[str, Any] = {"type": "Property", "value": value}
    if dataset:
        out["datasetId"] = dataset
    return out


def test_instance_changes_by_dataset_id() -> None:
    before = entity(t=[prop(1), prop(2, "urn:d:a")], gone=[prop(0)])
    after = entity(t=[prop(1), prop(3, "urn:d:a"), prop(4, "urn:d:b")], new=[prop(5)])
    changes = attribute_changes(before, after)
    assert sorted(changes[EX + "t"]) == [("created", "urn:d:b"), ("updated", "urn:d:a")]
    assert changes[EX + "gone"] == [("deleted", "@none")]
    assert changes[EX + "new"] == [("created", "@none")]


def test_instance_changes_of_untouched_and_single_instance_attributes() -> None:
    """The quick paths (an attribute as it was; one default instance each side) say what the
    instance-by-instance comparison says."""
    before = entity(t=[prop(1)], same=[prop(0)], d=[prop(1, "urn:d:a")], mixed=[prop(1)])
    after = entity(t=[prop(2)], same=[prop(0)], d=[prop(2, "urn:d:b")], mixed=[prop(1, "urn:d:a")])
    changes = attribute_changes(before, after)
    assert changes[EX + "t"] == [("updated", "@none")]
    assert EX + "same" not in changes
    assert sorted(changes[EX + "d"]) == [("created", "urn:d:b"), ("deleted", "urn:d:a")]
    assert sorted(changes[EX + "mixed"]) == [("created", "urn:d:a"), ("deleted", "@none")]


@pytest.mark.parametrize(
    ("triggers", "expected"),
    [
        (None, "attributeCreated"),
        (["entityCreated"], "entityCreated"),
        (["entityUpdated"], None),
        (["attributeDeleted"], None),
    ],
)
def test_creation(triggers: list[str] | None, expected: str | None) -> None:
    members = {"notificationTrigger": triggers} if triggers else {}
    event = event_for(sub(**members), None, entity(t=[prop(1)]), NOW)
    assert (event and event["trigger"]) == expected


def test_update_fires_attribute_and_entity_triggers() -> None:
    before, after = entity(t=[prop(1)]), entity(t=[prop(2)])
    assert event_for(sub(), before, after, NOW)["trigger"] == "attributeUpdated"  # type: ignore[index]
    only_entity = sub(notificationTrigger=["entityUpdated"])
    assert event_for(only_entity, before, after, NOW)["trigger"] == "entityUpdated"  # type: ignore[index]
    assert event_for(sub(), before, entity(t=[prop(1)]), NOW) is None  # nothing changed


def test_watched_attributes_filter_changes() -> None:
    watching = sub(watchedAttributes=[EX + "h"])
    assert (
        event_for(watching, entity(t=[prop(1)], h=[prop(0)]), entity(t=[prop(2)], h=[prop(0)]), NOW)
        is None
    )
    event = event_for(watching, entity(h=[prop(0)]), entity(h=[prop(9)]), NOW)
    assert event is not None and event["trigger"] == "attributeUpdated"


def test_show_changes_and_deletion_markers() -> None:
    s = sub(
        notificationTrigger=["attributeUpdated", "attributeDeleted"],
        notification={"endpoint": {"uri": "http://x/n"}, "showChanges": True},
    )
    event = event_for(s, entity(t=[prop(1)], g=[prop("x")]), entity(t=[prop(2)]), NOW)
    assert event is not None and event["trigger"] == "attributeUpdated"
    attrs = event["entity"]["attrs"]
    assert attrs[EX + "t"][0]["_prev"] == 1
    marker = attrs[EX + "g"][0]
    assert marker["value"] == "urn:ngsi-ld:null" and marker["_prev"] == "x"


def test_entity_deletion_carries_what_the_trigger_needs() -> None:
    before = entity(t=[prop(1)], h=[prop(2)])
    deleted = event_for(sub(notificationTrigger=["entityDeleted"]), before, None, NOW)
    assert deleted is not None
    assert deleted["entity"]["attrs"] == {} and deleted["entity"]["deletedAt"] == NOW
    watched = sub(notificationTrigger=["attributeDeleted"], watchedAttributes=[EX + "h"])
    event = event_for(watched, before, None, NOW)
    assert event is not None and list(event["entity"]["attrs"]) == [EX + "h"]


SUBS = [
    {},
    {"notification": {"endpoint": {"uri": "http://x/n"}, "showChanges": True}},
    {"watchedAttributes": [EX + "h"]},
    {"watchedAttributes": [EX + "g"], "notificationTrigger": ["attributeDeleted"]},
    {
        "watchedAttributes": [EX + "t", EX + "g"],
        "notificationTrigger": ["attributeDeleted", "attributeUpdated", "entityDeleted"],
        "notification": {"endpoint": {"uri": "http://x/n"}, "showChanges": True},
    },
    {"notificationTrigger": ["entityDeleted", "entityCreated"]},
]
CHANGES = [
    (None, entity(t=[prop(1)], h=[prop(2)])),
    (  # updated, created, deleted instances; g loses both of its instances
        entity(t=[prop(1), prop(2, "urn:d:a")], g=[prop("x"), prop("y", "urn:d:a")], h=[prop(0)]),
        entity(t=[prop(5), prop(2, "urn:d:a"), prop(3, "urn:d:b")], h=[prop(0)], k=[prop(7)]),
    ),
    (entity(t=[prop(1)], g=[prop("x", "urn:d:a")], h=[prop(2)]), None),
]


@pytest.mark.parametrize("members", SUBS)
@pytest.mark.parametrize(("before", "after"), CHANGES)
def test_a_stored_change_gives_each_subscription_the_event_it_gave_alone(
    members: dict[str, Any], before: Any, after: Any
) -> None:
    """A change notifying several subscriptions is stored once, with each one's shape: the
    event built back from the two is the one the subscription gets for the change alone."""
    import orjson

    from cityhub.notify.events import ChangeEvents, dump_shape, stored_events

    others = [sub(**m) for m in SUBS]  # the record serves every shape of the change
    s = sub(**members)
    change = ChangeEvents(before, after, NOW)
    shape = change.shape(s)
    expected = event_for(s, before, after, NOW)
    assert (shape is None) == (expected is None)
    if shape is None:
        return
    shapes = [x for x in map(change.shape, others) if x is not None]
    record = orjson.dumps(change.record(shapes))
    assert stored_events(dump_shape(shape), record) == [expected]
    alone = orjson.dumps(change.record([shape]))
    assert stored_events(dump_shape(shape), alone) == [expected]


def test_selection_by_id_pattern_and_q() -> None:
    s = sub(
        entities=[{"idPattern": "urn:ngsi-ld:Room:[0-9]+", "type": EX + "Room"}],
        q="t>5",
        _ctx={"t": EX + "t"},
    )
    assert event_for(s, None, entity(t=[prop(6)]), NOW) is not None
    assert event_for(s, None, entity(t=[prop(4)]), NOW) is None
    other = entity(t=[prop(9)]) | {"id": "urn:ngsi-ld:Room:x"}
    assert event_for(s, None, other, NOW) is None


def located(lon: float, lat: float, scope: str) -> dict[str, Any]:
    """A Room at a point (location is a core term: its stored name is the core IRI)."""
    point = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}
    doc = entity() | {"scope": [scope]}
    doc["attrs"] = {"https://uri.etsi.org/ngsi-ld/location": [point]}
    return doc


def test_geoq_and_scopeq_select_the_entities_in_range() -> None:
    near_hall = sub(
        geoQ={
            "georel": "near;maxDistance==500",
            "geometry": "Point",
            "coordinates": [127.3903, 35.4163],
        },
        scopeQ="/namwon/#",
    )
    assert event_for(near_hall, None, located(127.3905, 35.4165, "/namwon/downtown"), NOW)
    assert event_for(near_hall, None, located(127.45, 35.45, "/namwon/downtown"), NOW) is None
    assert event_for(near_hall, None, located(127.3905, 35.4165, "/mungyeong"), NOW) is None


def test_a_join_past_the_render_bound_notifies_without_the_join(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A notification is still sent, with its links as ids, and the log says why."""
    from cityhub.ngsild import linked
    from cityhub.notify.payload import render_event_entity

    room = entity(next=[{"type": "Relationship", "object": "urn:ngsi-ld:Room:1"}])
    s = sub(notification={"endpoint": {"uri": "http://127.0.0.1:9/n"}, "join": "inline"})
    fetched = {"urn:ngsi-ld:Room:1": room}
    joined = render_event_entity(s, room, lambda ids: {i: fetched[i] for i in ids})
    assert joined[0][EX + "next"]["entity"]["id"] == "urn:ngsi-ld:Room:1"
    monkeypatch.setattr(linked, "MAX_LINKED", 0)
    plain = render_event_entity(s, room, lambda ids: {i: fetched[i] for i in ids})
    assert plain[0][EX + "next"] == {"type": "Relationship", "object": "urn:ngsi-ld:Room:1"}
    assert "notified without the join" in caplog.text


def test_the_first_notification_is_never_throttled() -> None:
    """last_sent began at 0.0 on the monotonic clock, which starts near boot: a throttling
    longer than the machine's uptime held back every notification."""
    s = sub(throttling=10**9)
    assert s.due(3_600.0), "the first one goes"
    s.last_sent = 3_600.0
    assert not s.due(3_601.0), "the next waits for the throttling"


def test_q_is_read_percent_decoded_when_checked_and_when_matched() -> None:
    """The suite writes a subscription's q as in a URL (`name=="Eiffel%20Tower"`, ETSI
    046_05): matching decoded it, but the check at creation did not, so `x%22y` was accepted
    and then never matched anything."""
    from cityhub.ngsild.errors import BadRequestData
    from cityhub.ngsild.query.evaluate import matches_q
    from cityhub.ngsild.subscriptions import q_text

    s = sub(q='name=="Eiffel%20Tower"')
    assert s.q is not None
    iri = "https://uri.etsi.org/ngsi-ld/default-context/name"  # q names are core-context terms
    tower = {**entity(), "attrs": {iri: [{"type": "Property", "value": "Eiffel Tower"}]}}
    assert matches_q(s.q, tower)
    assert q_text('name=="Eiffel%20Tower"')
    with pytest.raises(BadRequestData):
        q_text('code=="x%22y"')  # decodes to an unbalanced quote: refused at creation


def test_a_deleted_subscriptions_status_is_not_written_to_its_successor() -> None:
    """A subscription deleted and created again with the same id within a second took over
    the old one's timesSent from the unwritten status."""
    from cityhub.notify.status import StatusBook

    class Store:
        def __init__(self) -> None:
            self.updates: list[str] = []

        def resource_set_member(self, kind: str, member: str, rows: list[Any]) -> None:
            self.updates += [rid for _, rid, _ in rows]

    store = Store()
    book = StatusBook(store, "subscription")
    s = sub()
    book.record(s, True)
    book.forget(s.tenant, s.id)
    book.flush()
    assert store.updates == []
    book.record(s, True)
    book.flush()
    assert store.updates == [s.id]


def test_concise_show_changes_keeps_the_previous_value() -> None:
    """A concise Property standing as its bare value had nowhere for previousValue."""
    from cityhub.notify.payload import render_event_entity

    point, moved = ({"type": "Point", "coordinates": [x, 1]} for x in (1, 2))
    s = sub(
        notification={"endpoint": {"uri": "http://x/n"}, "showChanges": True, "format": "concise"}
    )
    old = entity(t=[prop(1)], g=[{"type": "GeoProperty", "value": point}])
    new = entity(t=[prop(2)], g=[{"type": "GeoProperty", "value": moved}])
    event = event_for(s, old, new, NOW)
    assert event is not None
    [out] = render_event_entity(s, event["entity"], lambda ids: {})
    assert out[EX + "t"] == {"value": 2, "previousValue": 1}, out
    assert out[EX + "g"] == {"value": moved, "previousValue": point}, out


def test_show_changes_with_a_dataset_filter_lands_on_its_own_instance() -> None:
    """Previous values were placed by stored position in a list the datasetId filter had
    shortened: the default instance's previous value landed on urn:ds:1."""
    from cityhub.notify.payload import render_event_entity

    def temps(default: int, one: int) -> list[dict[str, Any]]:
        return [prop(default), {**prop(one), "datasetId": "urn:ds:1"}]

    s = sub(
        datasetId=["urn:ds:1"],
        notification={"endpoint": {"uri": "http://x/n"}, "showChanges": True},
    )
    # a change to the default instance alone is none of its business (test_notify_datasets)
    assert event_for(s, entity(t=temps(1, 10)), entity(t=temps(2, 10)), NOW) is None
    old, new = temps(1, 10), temps(2, 20)
    event = event_for(s, entity(t=old), entity(t=new), NOW)
    assert event is not None
    [out] = render_event_entity(s, event["entity"], lambda ids: {})
    assert out[EX + "t"] == {"type": "Property", "value": 20, "datasetId": "urn:ds:1"} | {
        "previousValue": 10
    }, out


@pytest.mark.parametrize("fmt", ["normalized", "keyValues"])
def test_a_deleted_language_property_is_notified_under_lang(fmt: str) -> None:
    """An entity deletion with showChanges carries its attributes as urn:ngsi-ld:null
    markers: under the subscription's lang a LanguageProperty's marker is no language map
    to pick from (the render failed, and the notification was dropped)."""
    from cityhub.notify.payload import render_event_entity

    s = sub(
        lang="fr",
        notificationTrigger=["entityDeleted"],
        notification={
            "endpoint": {"uri": "http://127.0.0.1:9/n"},
            "showChanges": True,
            "format": fmt,
        },
    )
    name = {"type": "LanguageProperty", "languageMap": {"fr": "salle", "en": "room"}}
    event = event_for(s, entity(name=[name]), None, NOW)
    assert event is not None
    out = render_event_entity(s, event["entity"], lambda ids: {})
    marker = out[0][EX + "name"]
    null = "urn:ngsi-ld:null"
    assert marker == null if fmt == "keyValues" else marker["languageMap"] == null


def test_a_deleted_geo_property_is_notified_in_concise_form_with_its_previous_value() -> None:
    """Concise form puts a deleted GeoProperty's marker (a string, no geometry) under value
    to carry previousValue (the render failed reading the marker as a geometry)."""
    from cityhub.notify.payload import render_event_entity

    s = sub(
        notificationTrigger=["entityDeleted"],
        notification={
            "endpoint": {"uri": "http://127.0.0.1:9/n"},
            "showChanges": True,
            "format": "concise",
            "sysAttrs": True,
        },
    )
    point = {"type": "Point", "coordinates": [1, 2]}
    loc = {"type": "GeoProperty", "value": point, "createdAt": NOW}
    event = event_for(s, entity(location=[loc]), None, NOW)
    assert event is not None
    out = render_event_entity(s, event["entity"], lambda ids: {})[0][EX + "location"]
    assert out["value"] == "urn:ngsi-ld:null"
    assert out["previousValue"] == point


@pytest.mark.parametrize(
    ("fmt", "shown"),
    [
        ("normalized", {"type": "Property", "value": "Grand pont", "lang": "fr"}),
        ("concise", {"value": "Grand pont", "lang": "fr"}),
    ],
)
def test_a_lang_subscription_shows_the_previous_string_alone(
    fmt: str, shown: dict[str, Any]
) -> None:
    """Under lang=fr the attribute is the French string as a Property; its previous member
    was previousLanguageMap with every language (a probe's finding 2.2, 2026-12-07)."""
    from cityhub.notify.payload import render_event_entity

    def name(**languages: str) -> list[dict[str, Any]]:
        return [{"type": "LanguageProperty", "languageMap": languages}]

    s = sub(
        lang="fr",
        notification={"endpoint": {"uri": "http://x/n"}, "showChanges": True, "format": fmt},
    )
    old, new = name(en="Bridge", fr="Pont"), name(en="Big bridge", fr="Grand pont")
    event = event_for(s, entity(name=old), entity(name=new), NOW)
    assert event is not None
    [out] = render_event_entity(s, event["entity"], lambda ids: {})
    assert out[EX + "name"] == {**shown, "previousValue": "Pont"}, out
    plain = sub(notification={"endpoint": {"uri": "http://x/n"}, "showChanges": True})
    [out] = render_event_entity(plain, event["entity"], lambda ids: {})
    assert out[EX + "name"]["previousLanguageMap"] == {"en": "Bridge", "fr": "Pont"}


@pytest.mark.parametrize("fmt", ["normalized", "concise"])
def test_previous_object_list_has_the_items_object_list_has(fmt: str) -> None:
    """objectList showed [{"object": URI}] and previousObjectList bare URIs (2.7)."""
    from cityhub.notify.payload import render_event_entity

    def rel(*objects: str) -> list[dict[str, Any]]:
        return [{"type": "ListRelationship", "objectList": list(objects)}]

    s = sub(notification={"endpoint": {"uri": "http://x/n"}, "showChanges": True, "format": fmt})
    event = event_for(s, entity(rl=rel("urn:a", "urn:b")), entity(rl=rel("urn:c")), NOW)
    assert event is not None
    [out] = render_event_entity(s, event["entity"], lambda ids: {})
    assert out[EX + "rl"]["objectList"] == [{"object": "urn:c"}]
    assert out[EX + "rl"]["previousObjectList"] == [{"object": "urn:a"}, {"object": "urn:b"}]
