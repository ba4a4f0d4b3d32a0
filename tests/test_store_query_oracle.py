"""The SQL the SQLite store runs for q, types, scopes and geoQ agrees with the pure-Python
evaluator on the same stored documents, whichever plan the selectivity probe picks."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.params import fold_selectors
from cityhub.ngsild.query import ast, evaluate, geo
from cityhub.ngsild.query.qlang import parse_q
from cityhub.ngsild.query.typeexpr import parse_types
from cityhub.ngsild.service import EntityService
from cityhub.store.base import EntityQuery, EntitySelector, StoreError
from cityhub.store.sqlite import SqliteStore, backend, qsql

TYPES = ("Sensor", "Lamp", "Bus")
STATUS = ("ok", "warn", "alarm")


def _entity(i: int, rnd: random.Random) -> dict[str, Any]:
    ent: dict[str, Any] = {
        "id": f"urn:ngsi-ld:{TYPES[i % 3]}:{i}",
        "type": TYPES[i % 3] if i % 7 else [TYPES[i % 3], "Asset"],
        "temperature": {
            "type": "Property",
            "value": round(rnd.uniform(-5, 40), 1),
            "observedAt": f"2024-01-{1 + i % 28:02d}T10:00:00Z",
            "accuracy": {"type": "Property", "value": rnd.choice([0.1, 0.5, 1])},
        },
        "status": {"type": "Property", "value": rnd.choice(STATUS)},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [2 + rnd.random(), 41 + rnd.random()]},
        },
    }
    if i % 4 == 0:
        ent["owner"] = {"type": "Relationship", "object": f"urn:ngsi-ld:Person:{i % 5}"}
    if i % 5 == 0:
        ent["cfg"] = {"type": "JsonProperty", "json": {"mode": rnd.choice(["eco", "max"])}}
    if i % 3 == 0:
        ent["scope"] = rnd.choice(["/a/b", "/a/c", "/z"])
    return ent


def _prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


# Values of every kind q distinguishes: arrays, lists, objects with members of mixed kinds,
# booleans against numbers, Date/Time values, multi-attributes, Relationships with several
# objects, vocabularies, languages, nulls, integers past 64 bits.
SPECIAL: list[dict[str, Any]] = [
    {
        "id": "urn:ngsi-ld:Sensor:T1",
        "type": "Sensor",
        "tags": _prop(["red", "blue"]),
        "lst": {"type": "ListProperty", "valueList": [5, 6, 7]},
        "obj": _prop({"a": {"b": 3}, "arr": [1, 2, 3], "s": "txt"}),
        "temp": _prop(21.5, acc=_prop(0.5)),
        "lbl": {"type": "LanguageProperty", "languageMap": {"en": "Hello", "fr": "Bonjour"}},
        "flag": _prop(True),
        "rel": {"type": "Relationship", "object": ["urn:ngsi-ld:Person:1", "urn:ngsi-ld:P:2"]},
        "cat": {"type": "VocabProperty", "vocab": ["red", "blue"]},
        "multi": [_prop(["red", "blue"], datasetId="urn:ds:1"), _prop("green")],
        "d": _prop({"@type": "Date", "@value": "2024-03-01"}),
        "t": _prop({"@type": "Time", "@value": "10:30:00Z"}),
        "dt": _prop({"@type": "DateTime", "@value": "2024-03-01T10:00:00+01:00"}),
        "o": _prop({"d": "2024-03-01", "t": "10:30:00Z"}),
        "big": _prop(2**53),
    },
    {
        "id": "urn:ngsi-ld:Sensor:T2",
        "type": ["Sensor", "Asset"],
        "tags": _prop(["red"]),
        "lst": {"type": "ListProperty", "valueList": [6]},
        "obj": _prop({"a": 5, "arr": [2, None], "s": "z"}),
        "temp": _prop(5, acc=_prop("high")),
        "lbl": {"type": "LanguageProperty", "languageMap": {"en": ["Hello", "Hey"]}},
        "flag": _prop(1),
        "rel": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
        "cat": {"type": "VocabProperty", "vocab": "blue"},
        "multi": [_prop(["red", "blue"], datasetId="urn:ds:1"), _prop("red")],
        "j": {"type": "JsonProperty", "json": [1, "x", None, {"k": 1}]},
        "lr": {"type": "ListRelationship", "objectList": [{"object": "urn:ngsi-ld:Person:3"}]},
        "d": _prop({"@type": "Date", "@value": "2024-03-02"}),
        "t": _prop({"@type": "Time", "@value": "11:30:00+02:00"}),
        "dt": _prop("2024-03-01"),
        "o": _prop({"d": "2024-02-29", "t": "2024-03-01T10:30:00Z"}),
        "big": _prop(2**53 + 1),
    },
    {
        "id": "urn:ngsi-ld:Lamp:T3",
        "type": "Lamp",
        "tags": _prop("red"),
        "lst": {"type": "ListProperty", "valueList": []},
        "obj": _prop({"arr": [[2]], "s": ["txt"]}),
        "temp": _prop(9223372036854775807, acc=_prop([0.1, "x"])),
        "flag": _prop(False),
        "multi": [_prop("red", datasetId="urn:ds:1"), _prop("red", datasetId="urn:ds:2")],
        "d": _prop("2024-03-01"),
        "t": _prop("10:30:00Z"),
        "dt": _prop("2024-03-01T09:00:00Z"),
        "big": _prop([-(2**53) - 1, 5]),
    },
    {
        "id": "urn:ngsi-ld:Lamp:T4",
        "type": "Lamp",
        "tags": _prop(["blue", "green"]),
        "obj": _prop(7),
        "temp": _prop("21.5"),
        "flag": _prop(0),
        "multi": [_prop(["blue"], datasetId="urn:ds:1"), _prop(["red", "red"])],
        "status": {"type": "VocabProperty", "vocab": "ok"},
    },
    {  # corners of 4.9: quoted commas and quotes, @none, sub-attributes per instance, and
        # strings that are nearly DateTimes, Dates or Times
        "id": "urn:ngsi-ld:Lamp:T5",
        "type": "Lamp",
        "xtags": _prop(["a,b", 'say "hi"', ""]),
        "xlbl": {"type": "LanguageProperty", "languageMap": {"@none": "Rot", "en": ["Red"]}},
        "xm": [_prop(1, acc=_prop(0.5)), _prop(2, datasetId="urn:ds:1", acc=_prop(0.9))],
        "xwide": _prop("\uff12\uff10\uff12\uff14-05-01T10:00:00Z"),
        "xneg": _prop(-0.0),
        "xt": _prop(["24:00:00", "10:30", "10:30:00,5Z"]),
        "xdt": _prop(["2024-05-01t10:00:00z", "2024-05-01T12:00:00+0200", "2024-05-01T10:00Z"]),
    },
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteStore, list[dict[str, Any]]]:
    store = SqliteStore(tmp_path_factory.mktemp("oracle") / "hub.db")
    rnd = random.Random(11)
    tm = ContextCache().core
    out = EntityService(store).batch_upsert(
        "", [_entity(i, rnd) for i in range(300)] + SPECIAL, tm, "replace"
    )
    assert not out.errors
    docs, _ = store.query("", EntityQuery(limit=1000, offset=0))
    return store, docs


Q = [
    "temperature>20",
    'temperature<=0|status=="alarm"',
    'temperature==10..20;status!="ok"',
    'status=="ok","warn"',
    'status~="^w"',
    "owner",
    'owner=="urn:ngsi-ld:Person:0"',
    "temperature.accuracy<0.5",
    "temperature.observedAt>=2024-01-20T00:00:00Z",
    'cfg[mode]=="eco"',
    '(temperature>30|temperature<0);status=="ok"',
    'status!="ok"',
    'status!="ok","warn"',
    "temperature!=10..20",
    'status!~="^w"',
    'owner!="urn:ngsi-ld:Person:0"',
    # F1: != and !~= hold for a target none of whose elements equal / match
    'tags!="red"',
    "tags!~=red",
    "tags!~=^re",
    'tags=="red"',
    'tags=="red","green"',
    'tags!="red","green"',
    "tags~=re",
    'tags>"green"',
    "lst!=6",
    "lst==6",
    "lst>6",
    "lst<=5",
    "lst==6..7",
    "lst!=5..6",
    "lst!=1,6",
    'cat!="red"',
    'cat=="blue"',
    'rel!="urn:ngsi-ld:Person:1"',
    'rel=="urn:ngsi-ld:Person:1"',
    "rel~=Person",
    'rel>"urn"',
    'lr=="urn:ngsi-ld:Person:3"',
    "lr!~=Person",
    'multi!="red"',
    'multi=="green"',
    "multi!~=^r",
    'temp!="red"',
    "obj!=5",
    'lbl!="Hello"',
    'lbl=="Hey"',
    'lbl>"H"',
    "lbl!~=^H",
    'lbl!="Bonjour"',
    'lbl[*]!="Hello"',
    'lbl[*]>="Hey"',
    "j==null",
    "j!=null",
    'j=="x"',
    "j>0",
    "flag==true",
    "flag!=true",
    "flag==false",
    "flag==1",
    "flag!=1",
    "flag>0",
    "flag<1",
    "flag==0..1",
    "flag==true,1",
    # F2: sub-attributes and [key] paths compare same kinds only
    "obj[s]>5",
    "obj[a]>5",
    "obj[arr]>2",
    'obj[a.b]<"a"',
    "obj[a.b]==3",
    'obj[s]=="txt"',
    "obj[s]~=^t",
    'obj[s]!="txt"',
    'temp.acc<"a"',
    "temp.acc>=0.5",
    "temp.acc==0.1",
    "temp.acc!=0.1",
    "lbl[en]>5",
    'lbl[en]=="Hello"',
    'lbl[*]=="Bonjour"',
    'lbl[en]!="Hello"',
    "obj[a]",
    "obj[a.b]",
    "temp.acc",
    # F3: arrays unroll, numeric steps index them
    "obj[arr]==2",
    "obj[arr.1]==2",
    "obj[arr.0]<2",
    "obj[arr]!=2",
    "obj[arr]==null",
    "obj[arr.0.0]==2",
    # F4: Date and Time values compare as dates and times, DateTimes as instants
    "d==2024-03-01",
    "d<=2024-03-01",
    "d>2024-03-01",
    "d!=2024-03-01",
    'd=="2024-03-01"',
    "d~=^2024",
    "d==2024-01-01..2024-03-01",
    "d>2024-03-01T00:00:00Z",
    "t==10:30:00Z",
    "t<11:00:00Z",
    "t>=09:30:00Z",
    "t==09:00:00Z..10:30:00Z",
    "t!=10:30:00Z",
    "dt==2024-03-01T09:00:00Z",
    "dt>=2024-03-01T09:00:00Z",
    "dt<2024-03-01T10:00:00Z",
    "dt==2024-03-01",
    "o[d]==2024-03-01",
    "o[d]<2024-03-01",
    "o[t]>10:00:00Z",
    "o[t]==2024-03-01T10:30:00Z",
    # F5: integers at the end of 64 bits compare as numbers (past 2^63-1 a literal is a 400
    # and a stored one is refused, decision 053; doubles past it still compare)
    "temp==9223372036854775807",
    "temp>=9223372036854775807",
    "temp<9223372036854775807",
    "temp==1..9223372036854775807",
    "temp!=9223372036854775807",
    "obj[a.b]<9223372036854775807",
    "temp==1e30",
    "temp>-1e30",
    "temp<1e30",
    # integers from 2^53 on, which doubles cannot tell apart, compare exactly
    "big==9007199254740993",
    "big==9007199254740992",
    "big>9007199254740992",
    "big<=9007199254740992",
    "big!=9007199254740992",
    "big==5,9007199254740993",
    "big!=5,9007199254740993",
    "big==9007199254740993..9007199254740999",
    "big==9007199254740992.0",
    "big==-9007199254740993",
    "big<-9007199254740992",
    "big>4",
    # quoted commas and escapes, @none, sub-attributes of each instance, near-temporal strings
    'xtags=="a,b"',
    'xtags=="say \\"hi\\""',
    'xtags==""',
    'xtags!="a,b","x"',
    'xtags=="a".."b"',
    "xtags~=^$",
    'xlbl[@none]=="Rot"',
    'xlbl[en]=="Red"',
    'xlbl[*]!="Rot"',
    "xm.acc>0.6",
    "xm.acc==0.5",
    'xm.datasetId=="urn:ds:1"',
    "xm.datasetId",
    "xwide==2024-05-01T10:00:00Z",
    'xwide~="^2"',
    "xneg==0",
    "xneg<0",
    "xt==00:00:00",
    'xt=="10:30"',
    "xt>10:30:00Z",
    "xdt==2024-05-01T10:00:00Z",
    "xdt>=2024-05-01T09:00:00Z;xdt<2024-05-01T10:00:01Z",
    # entity members
    'id=="urn:ngsi-ld:Sensor:T1"',
    "createdAt>2000-01-01",
    "createdAt<2999-01-01T00:00:00Z",
    "createdAt~=^2",
    "modifiedAt!=2000-01-01T00:00:00Z",
]


def _expand(node: Any) -> Any:
    """Names expanded, and strings also as vocabulary terms, as params.py does."""
    return ast.expand_q(node, ContextCache().core.expand)


@pytest.mark.parametrize("split", [False, True], ids=["one-count", "split-count"])
@pytest.mark.parametrize("selective", [0, 10**9], ids=["correlated", "in-list"])
@pytest.mark.parametrize("q", Q)
def test_q_matches_the_evaluator(
    loaded: tuple[SqliteStore, list[dict[str, Any]]],
    q: str,
    selective: int,
    split: bool,
    monkeypatch: Any,
) -> None:
    store, docs = loaded
    monkeypatch.setattr(qsql, "SELECTIVE", selective)
    monkeypatch.setattr(backend, "SPLIT_SPAN", 1 if split else 10**9)
    _answers(store, docs, _expand(parse_q(q)))


def _answers(store: SqliteStore, docs: list[dict[str, Any]], node: Any) -> None:
    """The store's page and count for q agree with the evaluator, under every type filter."""
    for types in (None, "Sensor", "Sensor,Lamp", "(Sensor;Asset)"):
        tnode = ast.map_names(parse_types(types), ContextCache().core.expand) if types else None
        got, total = store.query("", EntityQuery(q=node, types=tnode, limit=1000, count=True))
        want = [
            d["id"]
            for d in docs
            if evaluate.matches_q(node, d) and (tnode is None or evaluate.matches_types(tnode, d))
        ]
        assert sorted(x["id"] for x in got) == sorted(want), types
        assert total == len(want)


@pytest.mark.parametrize("q", Q)
def test_q_on_whole_documents_matches_the_evaluator(
    loaded: tuple[SqliteStore, list[dict[str, Any]]], q: str, monkeypatch: Any
) -> None:
    """The plan of a q with more than EVALUATED_TERMS correlated terms (q_match_doc, the
    evaluator on each candidate's document) gives the same answers."""
    store, docs = loaded
    monkeypatch.setattr(qsql, "EVALUATED_TERMS", -1)
    _answers(store, docs, _expand(parse_q(q)))


@pytest.mark.parametrize("seed", range(12))
def test_long_q_matches_the_evaluator(
    loaded: tuple[SqliteStore, list[dict[str, Any]]], seed: int
) -> None:
    """Random AND/OR trees of 40 to 300 of the terms above: under EVALUATED_TERMS correlated
    terms SQL answers them, past it the evaluator does, with the same answers."""
    store, docs = loaded
    rnd = random.Random(seed)
    terms = [rnd.choice(Q) for _ in range(rnd.randrange(40, 300))]
    groups = [terms[i : i + rnd.randrange(1, 6)] for i in range(0, len(terms), 5)]
    text = rnd.choice(";|").join("(" + rnd.choice(";|").join(g) + ")" for g in groups)
    _answers(store, docs, _expand(parse_q(text)))


@pytest.mark.parametrize(
    ("q", "matches"),
    [
        ('xtags=="a,b"', True),  # a comma inside a quoted value is the value's
        ('xtags=="say \\"hi\\""', True),
        ('xtags!="a,b","x"', False),  # != of a list: no item of the target is any of them
        ('xlbl[@none]=="Rot"', True),
        ('xlbl[*]!="Rot"', False),  # 4.9: no language may hold it
        ("xm.acc>0.6", True),  # any instance's sub-attribute
        ("xneg==0", True),  # -0 is 0
        ('xt=="10:30"', True),  # no Time (no seconds): a string
        ("xt==00:00:00", False),  # 24:00:00 is no Time of the grammar
    ],
)
def test_corners_answer_as_clause_4_9_says(
    loaded: tuple[SqliteStore, list[dict[str, Any]]], q: str, matches: bool
) -> None:
    store, _ = loaded
    got, _ = store.query("", EntityQuery(q=_expand(parse_q(q)), limit=1000))
    assert ("urn:ngsi-ld:Lamp:T5" in {d["id"] for d in got}) is matches


def test_a_long_q_is_evaluated_per_entity_and_repeats_once(tmp_path: Path) -> None:
    """Past EVALUATED_TERMS correlated terms the whole q is one q_match_doc call (SQLite's
    cost per row grew with the square of the number of correlated EXISTS: 400 terms took 14 s
    on 455 entities); a repeated term is compiled once."""
    store = SqliteStore(str(tmp_path / "q.db"))
    conn = store._reader()
    many = parse_q(";".join(f'name!="x{i}"' for i in range(qsql.EVALUATED_TERMS + 1)))
    comp = qsql.Compiler(conn, names=store.names, tenant="")
    assert comp.q_whole(many).startswith("q_match_doc(") and len(comp.params) == 1
    few = parse_q(";".join(f'name!="x{i}"' for i in range(qsql.EVALUATED_TERMS)))
    assert "q_match_doc" not in qsql.Compiler(conn, names=store.names, tenant="").q_whole(few)
    one, repeated = (
        qsql.Compiler(conn, names=store.names, tenant=""),
        qsql.Compiler(conn, names=store.names, tenant=""),
    )
    assert repeated.q_whole(parse_q(";".join(["name"] * 500))) == one.q_whole(parse_q("name"))
    store.close()


def _selector(rnd: random.Random) -> EntitySelector:
    """A random EntitySelector over the fixture's ids and types."""
    ids = None
    if rnd.random() < 0.5:
        ids = tuple(f"urn:ngsi-ld:{rnd.choice(TYPES)}:{rnd.randrange(320)}" for _ in range(3))
    pattern = rnd.choice([None, None, r"1\d$", ":Lamp:", "^urn:ngsi-ld:Bus:2"])
    raw = rnd.choice([None, "Sensor", "Lamp,Bus", "Asset", "(Sensor;Asset)", "Nothing"])
    types = ast.map_names(parse_types(raw), ContextCache().core.expand) if raw else None
    return EntitySelector(ids, pattern, types)


def _meets(sel: EntitySelector, doc: dict[str, Any]) -> bool:
    """The evaluator's reading of one selector: id AND idPattern AND type."""
    return (
        (sel.ids is None or doc["id"] in sel.ids)
        and (sel.id_pattern is None or re.search(sel.id_pattern, doc["id"]) is not None)
        and (sel.types is None or evaluate.matches_types(sel.types, doc))
    )


@pytest.mark.parametrize("seed", range(40))
def test_selectors_match_the_evaluator(
    loaded: tuple[SqliteStore, list[dict[str, Any]]], seed: int
) -> None:
    """Several EntitySelectors (as stored) and their folded form (as params.py sends them)
    select what the evaluator says: the entities that meet any selector."""
    store, docs = loaded
    rnd = random.Random(seed)
    raw = [_selector(rnd) for _ in range(rnd.randint(1, 6))]
    want = sorted(d["id"] for d in docs if any(_meets(s, d) for s in raw))
    folded = fold_selectors(raw)
    assert sorted(d["id"] for d in docs if any(_meets(s, d) for s in folded)) == want
    q = _expand(parse_q("temperature>-100"))  # a query needs one filter besides selectors
    want = [i for i in want if i.rsplit(":", 1)[1].isdigit()]  # SPECIAL has no temperature
    for sels in (raw, folded):
        got, total = store.query(
            "", EntityQuery(selectors=tuple(sels), q=q, limit=1000, count=True)
        )
        assert sorted(x["id"] for x in got) == want, (seed, sels)
        assert total == len(want)


GEOQ = [
    ("near;maxDistance==30000", "Point", "[2.5,41.5]"),
    ("near;minDistance==30000", "Point", "[2.5,41.5]"),
    ("within", "Polygon", "[[[2.1,41.1],[2.9,41.1],[2.9,41.9],[2.1,41.9],[2.1,41.1]]]"),
    ("within", "Polygon", "[[[2.3,41.3],[2.4,41.3],[2.4,41.4],[2.3,41.4],[2.3,41.3]]]"),
    ("intersects", "Polygon", "[[[2,41],[3,41],[2,42],[2,41]]]"),
    ("disjoint", "Polygon", "[[[2,41],[3,41],[2,42],[2,41]]]"),
    ("near;maxDistance==20000", "LineString", "[[2,41],[3,42]]"),
]


@pytest.mark.parametrize("crowded", [False, True], ids=["rtree-in-list", "per-entity"])
@pytest.mark.parametrize(("georel", "geometry", "coordinates"), GEOQ)
@pytest.mark.parametrize("typ", [None, "Sensor"])
def test_geo_plans_match_the_evaluator(
    loaded: tuple[SqliteStore, list[dict[str, Any]]],
    monkeypatch: Any,
    crowded: bool,
    georel: str,
    geometry: str,
    coordinates: str,
    typ: str | None,
) -> None:
    """Both geoQ plans (an R*Tree IN list, or a test per walked entity when the box holds
    many geometries), by type or not, paged or counted, give the evaluator's answer."""
    store, docs = loaded
    monkeypatch.setattr(qsql.Compiler, "_crowded", lambda self, box, limit: crowded)
    tm = ContextCache().core
    gq = geo.parse_geoq(georel, geometry, coordinates)
    assert gq is not None
    gq = geo.GeoQuery(
        gq.georel, gq.geometry, gq.geojson, tm.expand("location"), gq.max_distance, gq.min_distance
    )
    types = ast.TypeName(tm.expand(typ)) if typ else None
    want = [
        d["id"]
        for d in docs
        if evaluate.matches_geo(gq, d) and (typ is None or tm.expand(typ) in d["type"])
    ]
    got, total = store.query("", EntityQuery(geo=gq, types=types, limit=1000, count=True))
    assert sorted(x["id"] for x in got) == sorted(want)
    assert total == len(want)
    page, _ = store.query("", EntityQuery(geo=gq, types=types, limit=5))
    assert [x["id"] for x in page] == [x["id"] for x in got][:5]  # insertion order, first 5


def test_geo_and_scope_match_the_evaluator(
    loaded: tuple[SqliteStore, list[dict[str, Any]]], monkeypatch: Any
) -> None:
    store, docs = loaded
    gq = geo.parse_geoq("near;maxDistance==30000", "Point", "[2.5,41.5]", "location")
    assert gq is not None
    gq = geo.GeoQuery(
        gq.georel,
        gq.geometry,
        gq.geojson,
        ContextCache().core.expand("location"),
        gq.max_distance,
        gq.min_distance,
    )
    got, _ = store.query("", EntityQuery(geo=gq, limit=1000))
    want = [d["id"] for d in docs if evaluate.matches_geo(gq, d)]
    assert want, "the fixture must have some entities in range"
    assert sorted(x["id"] for x in got) == sorted(want)
    for span in (1, 10**9):  # a geoQ count is never split (its R*Tree IN list does the work)
        monkeypatch.setattr(backend, "SPLIT_SPAN", span)
        _, total = store.query("", EntityQuery(geo=gq, limit=0, count=True))
        assert total == len(want)
    scope = ast.ScopePattern("/a/#")
    got, _ = store.query("", EntityQuery(scope=scope, limit=1000))
    assert sorted(x["id"] for x in got) == sorted(
        d["id"] for d in docs if evaluate.matches_scope(scope, d)
    )


def test_a_database_of_another_schema_is_refused(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "old.db")
    store._writer.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store.close()
    with pytest.raises(StoreError, match="schema 1"):
        SqliteStore(tmp_path / "old.db")


def test_partial_reindex_after_updates_matches_the_evaluator(tmp_path: Path) -> None:
    """PATCH rewrites only the touched attributes' index rows; queries still agree."""
    store = SqliteStore(tmp_path / "hub.db")
    rnd = random.Random(5)
    tm = ContextCache().core
    svc = EntityService(store)
    svc.batch_upsert("", [_entity(i, rnd) for i in range(120)], tm, "replace")
    for i in range(0, 120, 3):
        eid = f"urn:ngsi-ld:{TYPES[i % 3]}:{i}"
        svc.update("", eid, {"temperature": {"type": "Property", "value": 100 + i}}, tm)
        svc.merge("", eid, {"location": {"type": "Point", "coordinates": [10.0, 10.0]}}, tm)
    svc.delete_attribute("", "urn:ngsi-ld:Sensor:3", "status", tm)
    docs, _ = store.query("", EntityQuery(limit=1000))
    for q in ("temperature>99", "temperature<99", 'status=="ok"', "status"):
        node = _expand(parse_q(q))
        got, _ = store.query("", EntityQuery(q=node, limit=1000))
        want = [d["id"] for d in docs if evaluate.matches_q(node, d)]
        assert sorted(x["id"] for x in got) == sorted(want), q
    gq = geo.parse_geoq("near;maxDistance==1000", "Point", "[10.0,10.0]", None)
    assert gq is not None
    gq = geo.GeoQuery(
        gq.georel, gq.geometry, gq.geojson, tm.expand("location"), gq.max_distance, gq.min_distance
    )
    got, _ = store.query("", EntityQuery(geo=gq, limit=1000))
    assert len(got) == 40, "every moved entity is found at its new place, and only those"
