"""The demo town must be reproducible, physically plausible, and its example queries must hit."""

from __future__ import annotations

import itertools
import json
import math
import re
import shlex
import socket
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import mean
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from cityhub.demo import SampleCity, build_city
from cityhub.demo.city import (
    BBOX,
    CHANGE_ATTRS,
    HISTORY_ATTRS,
    OBSERVED_TYPES,
    UNIT_CODES,
)
from conftest import free_port

START = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)  # a Friday, 22:00 KST
KST = timedelta(hours=9)

COUNTS = {
    "AirQualityObserved": (15, 25),
    "WeatherObserved": (4, 8),
    "TrafficFlowObserved": (50, 70),
    "OffStreetParking": (20, 30),
    "Streetlight": (120, 180),
    "GtfsStop": (50, 70),
    "GtfsRoute": (6, 10),
    "GtfsAgency": (1, 1),
}

# attribute -> (min, max) for every value, current and past
RANGES = {
    "temperature": (-30, 45),
    "relativeHumidity": (0, 1),
    "atmosphericPressure": (950, 1050),
    "windSpeed": (0, 40),
    "windDirection": (0, 360),
    "precipitation": (0, 100),
    "pm10": (0, 600),
    "pm25": (0, 500),
    "no2": (0, 400),
    "o3": (0, 400),
    "co": (0, 30),
    "airQualityIndex": (0, 500),
    "intensity": (0, 3000),
    "averageVehicleSpeed": (0, 130),
    "occupancy": (0, 1),
    "illuminanceLevel": (0, 1),
}


@pytest.fixture(scope="module")
def city() -> SampleCity:
    """One town for the module, built at a fixed instant."""
    return build_city(seed=7, start=START)


def _by_id(city: SampleCity) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in city.entities}


def _points(geometry: dict[str, Any]) -> list[list[float]]:
    """All positions of a Point or LineString."""
    if geometry["type"] == "Point":
        return [geometry["coordinates"]]
    return list(geometry["coordinates"])


def _kst_hour(observed_at: str) -> int:
    return (datetime.strptime(observed_at, "%Y-%m-%dT%H:%M:%SZ") + KST).hour


def _mean_by_hour(city: SampleCity, entity_type: str, attr: str) -> dict[int, float]:
    values: dict[int, list[float]] = defaultdict(list)
    for item in city.history:
        if item["type"] == entity_type:
            for inst in item[attr]:
                values[_kst_hour(inst["observedAt"])].append(inst["value"])
    return {h: mean(v) for h, v in values.items()}


# ------------------------------------------------------------------- shape and identity


def test_same_seed_same_town() -> None:
    a, b = build_city(seed=3, start=START), build_city(seed=3, start=START)
    assert json.dumps(a.entities) == json.dumps(b.entities)
    assert json.dumps(a.history) == json.dumps(b.history)
    assert a.example_queries == b.example_queries


def test_other_seed_other_readings() -> None:
    a, b = build_city(seed=1, start=START), build_city(seed=2, start=START)
    assert json.dumps(a.history) != json.dumps(b.history)


def test_counts_in_range(city: SampleCity) -> None:
    counts = Counter(e["type"] for e in city.entities)
    for entity_type, (lo, hi) in COUNTS.items():
        assert lo <= counts[entity_type] <= hi, entity_type
    assert 300 <= len(city.entities) <= 400


def test_ids_unique_and_shaped(city: SampleCity) -> None:
    ids = [e["id"] for e in city.entities]
    assert len(ids) == len(set(ids))
    for e in city.entities:
        assert re.fullmatch(rf"urn:ngsi-ld:{e['type']}:namwon-\d{{3}}", e["id"])
        assert "@context" not in e


def test_every_entity_located_in_town(city: SampleCity) -> None:
    for e in city.entities:
        loc = e["location"]
        assert loc["type"] == "GeoProperty"
        assert loc["value"]["type"] in ("Point", "LineString")
        for lon, lat in _points(loc["value"]):
            assert BBOX[0] <= lon <= BBOX[2] and BBOX[1] <= lat <= BBOX[3], e["id"]


def test_relationships_resolve(city: SampleCity) -> None:
    ids = _by_id(city)
    rels = [a for e in city.entities for a in e.values() if isinstance(a, dict)]
    rels = [a for a in rels if a.get("type") == "Relationship"]
    assert rels
    assert all(r["object"] in ids for r in rels)


def test_attribute_kinds_present(city: SampleCity) -> None:
    kinds = Counter(
        a["type"] for e in city.entities for a in e.values() if isinstance(a, dict) and "type" in a
    )
    for kind in ("Property", "Relationship", "GeoProperty", "LanguageProperty", "ListProperty"):
        assert kinds[kind] > 0, kind
    stop = next(e for e in city.entities if e["type"] == "GtfsStop")
    assert set(stop["name"]["languageMap"]) == {"ko", "en"}
    weather = next(e for e in city.entities if e["type"] == "WeatherObserved")
    assert weather["temperature"]["accuracy"]["type"] == "Property"


def test_quantities_carry_units_and_observed_types_timestamps(city: SampleCity) -> None:
    stamp = "2026-11-20T13:00:00Z"
    for e in city.entities:
        for name, attr in e.items():
            if name in UNIT_CODES and isinstance(attr, dict):
                assert attr["unitCode"] == UNIT_CODES[name], (e["id"], name)
        if e["type"] in OBSERVED_TYPES:
            assert e["dateObserved"]["value"] == {"@type": "DateTime", "@value": stamp}


# ------------------------------------------------------------------------------ history


def test_history_matches_entities(city: SampleCity) -> None:
    ids = _by_id(city)
    assert {h["id"] for h in city.history} == {
        e["id"] for e in city.entities if e["type"] in HISTORY_ATTRS
    }
    for item in city.history:
        entity = ids[item["id"]]
        assert item["type"] == entity["type"]
        assert set(item) - {"id", "type"} == set(HISTORY_ATTRS[item["type"]])
        for attr, instances in item.items():
            if attr in ("id", "type"):
                continue
            times = [i["observedAt"] for i in instances]
            assert times == sorted(times) and times[0] == "2026-11-19T14:00:00Z", (item["id"], attr)
            if attr in CHANGE_ATTRS.get(item["type"], ()):  # one instance per change
                values = [i["value"] for i in instances]
                assert all(a != b for a, b in itertools.pairwise(values)), (item["id"], attr)
            else:
                assert len(instances) == 24 and times[-1] == "2026-11-20T13:00:00Z"
            last = instances[-1]
            assert last["value"] == entity[attr]["value"]
            assert last["observedAt"] == entity[attr]["observedAt"]
            assert last.get("unitCode") == entity[attr].get("unitCode") == UNIT_CODES.get(attr)


def test_every_type_with_history_changes_during_the_day(city: SampleCity) -> None:
    """Streetlight, GtfsStop and GtfsRoute had one instance per attribute (the current one):
    the brief wants each type of the town with a history."""
    for entity_type in (*OBSERVED_TYPES, "Streetlight", "GtfsStop", "GtfsRoute"):
        longest = max(
            len(instances)
            for item in city.history
            if item["type"] == entity_type
            for attr, instances in item.items()
            if attr not in ("id", "type")
        )
        assert longest >= 3, entity_type


def test_lamp_history_follows_night_and_day(city: SampleCity) -> None:
    lights = [h for h in city.history if h["type"] == "Streetlight"]
    level = _mean_by_hour(city, "Streetlight", "illuminanceLevel")
    assert level[22] > 0.8 and level[12] == 0 and 0.4 < level[2] < 0.65  # dimmed after midnight
    working = [h for h in lights if [i["value"] for i in h["status"]] == ["ok"]]
    assert working
    for h in working:  # on at dusk, off at dawn, on again (the window runs 23:00 to 22:00 KST)
        assert [i["value"] for i in h["powerState"]] == ["on", "off", "on"], h["id"]
        switched = [_kst_hour(i["observedAt"]) for i in h["powerState"][1:]]
        assert 6 <= switched[0] <= 8 and 17 <= switched[1] <= 19, switched
    failed = [h for h in lights if [i["value"] for i in h["status"]] == ["ok", "brokenLantern"]]
    assert failed, "a lamp failed during the window"
    for h in failed:
        went = h["status"][1]["observedAt"]
        assert any(i["observedAt"] == went and i["value"] == "off" for i in h["powerState"])


def test_stop_and_route_history(city: SampleCity) -> None:
    stops = [h["wheelChairAccessible"] for h in city.history if h["type"] == "GtfsStop"]
    works = [s for s in stops if len(s) > 1]
    assert 1 <= len(works) <= 4 and all(
        s[0]["value"] == "1" and s[1]["value"] == "2" for s in works
    )
    for h in (h for h in city.history if h["type"] == "GtfsRoute"):
        trips = {_kst_hour(i["observedAt"]): i["value"] for i in h["tripsPerHour"]}
        assert trips[6] > 0 and trips[23] == 0, trips  # the timetable starts and ends
        assert trips[7] == trips[6] + 2 and trips[9] == trips[6], trips  # a weekday peak


def test_step_and_window_follow_arguments() -> None:
    c = build_city(seed=7, hours=6, step_minutes=15, start=START)
    item = c.history[0]
    attr = next(k for k in item if k not in ("id", "type"))
    assert len(item[attr]) == 24
    assert item[attr][0]["observedAt"] == "2026-11-20T07:15:00Z"
    with pytest.raises(ValueError):
        build_city(hours=1, step_minutes=7)


def test_default_start_is_this_hour() -> None:
    c = build_city(hours=1)
    weather = next(e for e in c.entities if e["type"] == "WeatherObserved")
    stamp = weather["temperature"]["observedAt"]
    then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert stamp.endswith(":00:00Z")
    assert timedelta(0) <= datetime.now(UTC) - then < timedelta(hours=1, minutes=1)


def test_values_within_physical_ranges(city: SampleCity) -> None:
    for item in city.history:
        for attr, instances in item.items():
            if attr in RANGES:
                lo, hi = RANGES[attr]
                assert all(lo <= i["value"] <= hi for i in instances), (item["id"], attr)
    for e in city.entities:
        if e["type"] == "OffStreetParking":
            assert 0 <= e["availableSpotNumber"]["value"] <= e["totalSpotNumber"]["value"]
        if e["type"] == "Streetlight":
            assert e["status"]["value"] in ("ok", "defectiveLamp", "columnIssue", "brokenLantern")
            assert e["powerState"]["value"] in ("on", "off")
            assert 0 <= e["illuminanceLevel"]["value"] <= 1


def test_daily_cycles(city: SampleCity) -> None:
    traffic = _mean_by_hour(city, "TrafficFlowObserved", "intensity")
    assert traffic[8] > 3 * traffic[3] and traffic[18] > 3 * traffic[3]
    assert traffic[8] > traffic[12] < traffic[18]
    temperature = _mean_by_hour(city, "WeatherObserved", "temperature")
    assert temperature[15] > temperature[5] + 4
    parking = _mean_by_hour(city, "OffStreetParking", "occupancy")
    assert parking[13] > parking[3] + 0.2
    ozone = _mean_by_hour(city, "AirQualityObserved", "o3")
    assert ozone[13] > ozone[1]


def test_lights_follow_the_night(city: SampleCity) -> None:
    lights = [e for e in city.entities if e["type"] == "Streetlight"]
    working = [e for e in lights if e["status"]["value"] == "ok"]
    assert all(e["powerState"]["value"] == "on" for e in working)  # 22:00 KST
    noon = build_city(seed=7, hours=1, start=START.replace(hour=3))  # 12:00 KST
    assert all(
        e["powerState"]["value"] == "off" for e in noon.entities if e["type"] == "Streetlight"
    )


# ---------------------------------------------------------------------- example queries


def _value(entity: dict[str, Any], path: str) -> Any:
    """The comparable value at attr or attr.subattr (Relationship: its object)."""
    attr: Any = entity
    for part in path.split("."):
        attr = attr.get(part) if isinstance(attr, dict) else None
    if not isinstance(attr, dict):
        return None
    return attr.get("object", attr.get("value"))


def _literal(raw: str) -> Any:
    raw = unquote(raw)
    return raw[1:-1] if raw.startswith('"') else float(raw)


def _clause(entity: dict[str, Any], clause: str) -> bool:
    """A tiny subset of the NGSI-LD query language: enough for the example queries."""
    match = re.fullmatch(r"([\w.]+)(==|!=|>=|<=|>|<)(.+)", clause)
    assert match, clause
    path, op, raw = match.groups()
    value = _value(entity, path)
    if value is None:
        return False
    if ".." in raw:
        lo, hi = (float(x) for x in raw.split(".."))
        return lo <= value <= hi
    want = _literal(raw)
    return {
        "==": value == want,
        "!=": value != want,
        ">": value > want,
        "<": value < want,
        ">=": value >= want,
        "<=": value <= want,
    }[op]


def _metres(a: list[float], b: list[float]) -> float:
    dx = (a[0] - b[0]) * 111_320 * math.cos(math.radians(a[1]))
    return math.hypot(dx, (a[1] - b[1]) * 111_320)


def _geo_hit(entity: dict[str, Any], params: dict[str, str]) -> bool:
    coords = json.loads(params["coordinates"])
    where = entity["location"]["value"]["coordinates"]
    if params["georel"].startswith("near"):
        return _metres(where, coords) <= float(params["georel"].split("==")[1])
    xs, ys = [c[0] for c in coords[0]], [c[1] for c in coords[0]]  # axis-aligned box only
    return min(xs) <= where[0] <= max(xs) and min(ys) <= where[1] <= max(ys)


def _entity_hits(city: SampleCity, params: dict[str, str]) -> list[dict[str, Any]]:
    hits = [e for e in city.entities if e["type"] == params["type"]]
    if "q" in params:
        hits = [e for e in hits if all(_clause(e, c) for c in params["q"].split(";"))]
    if "georel" in params:
        hits = [e for e in hits if _geo_hit(e, params)]
    return hits


def _assert_attrs_exist(city: SampleCity, path: str, params: dict[str, str]) -> None:
    """attrs= and pick= name attributes the queried type really has."""
    if "attrs" not in params and "pick" not in params:
        return
    entity_type = params.get("type") or _by_id(city)[path.rsplit("/", 1)[1]]["type"]
    entity = next(e for e in city.entities if e["type"] == entity_type)
    for key in ("attrs", "pick"):
        for attr in filter(None, params.get(key, "").split(",")):
            assert attr in entity or attr in ("id", "type"), (path, attr)


def test_example_queries_hit_data(city: SampleCity) -> None:
    assert 10 <= len(city.example_queries) <= 15
    ids = _by_id(city)
    history_ids = {h["id"] for h in city.history}
    for description, query in city.example_queries:
        assert description and query.startswith("/") and " " not in query
        parts = urlsplit(query)
        params = dict(parse_qsl(parts.query))
        _assert_attrs_exist(city, parts.path, params)
        if parts.path == "/entities" and "type" in params:
            assert _entity_hits(city, params), query
        elif parts.path.startswith("/entities/"):
            assert parts.path.removeprefix("/entities/") in ids
        elif parts.path.startswith("/temporal/entities/"):
            assert parts.path.removeprefix("/temporal/entities/") in history_ids, query
        elif parts.path == "/temporal/entities":
            assert any(h["type"] == params["type"] for h in city.history), query
            assert params["timeAt"] < "2026-11-20T13:00:00Z"
        else:
            assert parts.path in ("/types", "/attributes"), query


def test_example_queries_cover_the_api(city: SampleCity) -> None:
    joined = " ".join(q for _, q in city.example_queries)
    for needle in (
        "q=no2>",
        "..",
        "temperature.accuracy",
        "georel=near;maxDistance==800",
        "format=simplified",
        "count=true",
        "pick=",
        "attrs=",
        "lastN=5",
        "timerel=",
        "aggrMethods=avg,max",
        "format=aggregatedValues",
        "/types",
        "/attributes",
    ):
        assert needle in joined, needle


def test_aggregation_example_has_several_readings_per_period(city: SampleCity) -> None:
    """It aggregated hourly readings per hour (PT1H): one value a period, the mean equal to
    the peak in every period, which shows nothing about aggregation."""
    (query,) = [q for _, q in city.example_queries if "aggrPeriodDuration" in q]
    hours = re.search(r"aggrPeriodDuration=PT(\d+)H", query)
    assert hours, query
    period = timedelta(hours=int(hours[1]))
    item = next(h for h in city.history if h["type"] == "TrafficFlowObserved")
    stamps = [datetime.fromisoformat(i["observedAt"]) for i in item["intensity"]]
    step = stamps[1] - stamps[0]
    assert period >= 3 * step and timedelta(hours=24) % period == timedelta(0), query
    start = datetime.fromisoformat(dict(parse_qsl(urlsplit(query).query))["timeAt"])
    per_period = Counter((t - start) // period for t in stamps)  # timerel=after: from timeAt on
    assert set(per_period.values()) == {period // step}, per_period  # whole periods only


@pytest.mark.parametrize("seed", [0, 1, 2, 42, 1234])
def test_example_queries_hit_for_other_seeds(seed: int) -> None:
    c = build_city(seed=seed, start=START + timedelta(hours=seed % 24))
    for _, query in c.example_queries:
        parts = urlsplit(query)
        params = dict(parse_qsl(parts.query))
        if parts.path == "/entities" and "type" in params:
            assert _entity_hits(c, params), (seed, query)


def test_demo_rebuilds_only_its_own_database(tmp_path: Path) -> None:
    """--db naming a city's real database (or one a hub serves) deleted it: now only a
    database the demo built is rebuilt, and never while another connection has it open."""
    from cityhub.demo.run import prepare_demo
    from cityhub.settings import Settings
    from cityhub.store.sqlite import SqliteStore

    real = tmp_path / "city.db"
    SqliteStore(real).close()
    assert not prepare_demo(Settings(db=str(real)))
    assert real.exists()
    demo = tmp_path / "mine.db"
    assert prepare_demo(Settings(db=str(demo)))
    serving = SqliteStore(demo)  # a hub has it open
    try:
        assert not prepare_demo(Settings(db=str(demo)))
    finally:
        serving.close()
    assert prepare_demo(Settings(db=str(demo)))  # the demo's own, closed: rebuilt


def test_a_demo_database_that_cannot_be_built_is_one_line_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--db in a folder that does not exist ended in a sqlite3 traceback."""
    from cityhub.cli import main

    target = tmp_path / "no-such-folder" / "demo.db"
    assert main(["demo", "--db", str(target), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert f"cityhub demo: cannot build {target}: the folder {target.parent} does not exist" in err
    assert "Traceback" not in err
    assert not target.parent.exists()


def test_demo_reads_the_mark_of_exactly_the_file_named(tmp_path: Path) -> None:
    """The mark was read through an unescaped file URI: for `city#1.db` it was read from
    `city`, so a demo database named `city` let the demo delete the real `city#1.db`."""
    from cityhub.demo.run import prepare_demo
    from cityhub.settings import Settings
    from cityhub.store.sqlite import SqliteStore

    assert prepare_demo(Settings(db=str(tmp_path / "city")))  # a demo database, marked
    real = tmp_path / "city#1.db"
    store = SqliteStore(real)
    store.close()
    size = real.stat().st_size
    assert not prepare_demo(Settings(db=str(real)))
    assert real.stat().st_size == size
    mine = tmp_path / "my demo?#%.db"
    assert prepare_demo(Settings(db=str(mine)))
    assert prepare_demo(Settings(db=str(mine)))  # its own mark is found: rebuilt


@pytest.mark.parametrize("which", ["http", "mqtt"])
def test_demo_on_a_taken_port_builds_nothing_and_prints_no_examples(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    which: str,
) -> None:
    """The port was checked only once the database was built and the examples printed: they
    pointed at whatever held the port, and the database was created or rebuilt anyway."""
    from cityhub.cli import main

    db = tmp_path / "demo.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["demo", "--db", str(db), "--port", str(port)]
        if which == "mqtt":
            monkeypatch.setenv("CITYHUB_MQTT_EMBEDDED_PORT", str(port))
            argv = ["demo", "--db", str(db), "--port", str(free_port()), "--mqtt", "embedded"]
        assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "cannot listen" in err or "MQTT broker cannot listen" in err, err
    assert "Try these" not in out and "loaded" not in out, out
    assert not db.exists()


def _examples(out: str) -> list[str]:
    """The printed example block, from its heading on."""
    lines = out.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("Try these")) :]


def test_demo_keep_prints_the_examples_of_the_data_it_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--keep printed examples for the town of the current hour: a day later the temporal
    ones asked for times after the kept history (empty answers), and the thresholds came
    from another town state."""
    import cityhub.demo.city as city_module
    from cityhub.demo.run import prepare_demo
    from cityhub.settings import Settings

    db = tmp_path / "demo.db"
    assert prepare_demo(Settings(db=str(db)))
    built = _examples(capsys.readouterr().out)

    class DayAndAHalfLater(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(hours=30)

    monkeypatch.setattr(city_module, "datetime", DayAndAHalfLater)
    assert prepare_demo(Settings(db=str(db)), keep=True)
    assert _examples(capsys.readouterr().out) == built


def test_demo_prints_curl_commands_that_work_as_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said `curl -s '<url>'`: curl reads the [ ] of coordinates as a URL pattern (exit 3,
    nothing printed), and the count example showed only `[]`, its count being in a header."""
    from cityhub.demo.run import prepare_demo
    from cityhub.settings import Settings

    assert prepare_demo(Settings(db=str(tmp_path / "demo.db"), port=1999))
    block = _examples(capsys.readouterr().out)
    commands = [line.strip() for line in block[1 : block.index("")]]
    commands = [shlex.split(c) for c in commands if c.startswith("curl ")]
    assert len(commands) == len(build_city(start=START).example_queries)
    for argv in commands:
        *flags, url = argv[1:]
        short = "".join(f[1:] for f in flags if f.startswith("-") and not f.startswith("--"))
        assert url.startswith("http://127.0.0.1:1999/ngsi-ld/v1/"), argv
        assert "s" in short and "g" in short, argv  # -g: [ ] are not a URL pattern
        assert ("i" in short) == ("count=true" in url), argv
    assert any("[" in argv[-1] for argv in commands)


def test_the_progress_bars_count_what_the_summary_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One bar counted entities and history items together as 'entity' (489 for 374)."""
    from cityhub.demo.run import load_city
    from cityhub.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "demo.db")
    try:
        entities, instances = load_city(store, build_city(start=START))
    finally:
        store.close()
    # "374/374 [00:00<00:00, 900.1entity/s]", or "s/entity" when slow
    bars = re.findall(r"(\d+)/(\d+) \[[^,\]]*, [\d.?]+(?:s/)?([a-z]+)", capsys.readouterr().err)
    finals = {(int(total), unit) for done, total, unit in bars if done == total}
    assert finals == {(entities, "entity"), (instances, "instance")}, bars[-3:]


def _city_database(path: Path) -> None:
    """A city's own database: one shop, imported, no demo mark."""
    from cityhub.ngsild.context import ContextCache
    from cityhub.ngsild.service import EntityService
    from cityhub.store.sqlite import SqliteStore

    store = SqliteStore(path)
    shop = {"id": "urn:ngsi-ld:Shop:s1", "type": "Shop"}
    EntityService(store).batch_upsert("", [shop], ContextCache().core, "replace")
    store.close()


def test_a_city_database_named_like_the_demos_is_not_rebuilt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Any cityhub database named cityhub-demo.db was rebuilt, the city's data with it: the
    default name stood in for the mark. So was a file that is no database, "in use"."""
    from cityhub.demo.run import prepare_demo
    from cityhub.settings import Settings

    db = tmp_path / "cityhub-demo.db"
    _city_database(db)
    before = db.read_bytes()
    assert not prepare_demo(Settings(db=str(db)))
    assert capsys.readouterr().err == (
        f"cityhub demo: {db} is not a demo database; name another --db, or remove it "
        "yourself; nothing was changed\n"
    )
    assert db.read_bytes() == before
    db.write_bytes(b"notes, not a database" * 100)
    assert not prepare_demo(Settings(db=str(db)))
    assert "is not a demo database" in capsys.readouterr().err


def test_a_demo_database_from_before_the_mark_is_still_rebuilt(tmp_path: Path) -> None:
    """The default file holding nothing but the sample town is the demo's, mark or not."""
    import sqlite3

    from cityhub.demo.run import DEMO_MARK, prepare_demo
    from cityhub.settings import Settings

    db = tmp_path / "cityhub-demo.db"
    assert prepare_demo(Settings(db=str(db)))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM meta WHERE key = ?", (DEMO_MARK,))
    conn.close()
    assert prepare_demo(Settings(db=str(db)))


def test_demo_keep_serves_only_a_demo_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--keep served a city's database as "the demo", with example queries matching nothing."""
    from cityhub.demo.run import prepare_demo
    from cityhub.settings import Settings

    db = tmp_path / "city.db"
    _city_database(db)
    assert not prepare_demo(Settings(db=str(db)), keep=True)
    out, err = capsys.readouterr()
    assert err == (
        f"cityhub demo: {db} is not a demo database; serve it with `cityhub serve --db {db}`\n"
    )
    assert "Try these" not in out


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleCity, int]:
    """The sample town loaded into a database, as `cityhub demo` loads it."""
    from cityhub.demo.run import load_city
    from cityhub.store.sqlite import SqliteStore

    db = tmp_path_factory.mktemp("demo") / "demo.db"
    town = build_city(start=START)
    store = SqliteStore(db)
    try:
        _, instances = load_city(store, town, progress=False)
    finally:
        store.close()
    return db, town, instances


def test_the_loaded_town_holds_each_reading_once(loaded: tuple[Path, SampleCity, int]) -> None:
    """The entity write stored each current value and the history append stored it again: every
    series ended in the same reading twice (956 times), and the summary counted neither."""
    import sqlite3

    db, town, instances = loaded
    conn = sqlite3.connect(db)
    try:
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM history GROUP BY tpk, nid, "
            "coalesce(dataset_id, ''), t_observed HAVING count(*) > 1)"
        ).fetchone()[0]
        series = {(h["id"], attr) for h in town.history for attr in h if attr not in ("id", "type")}
        stored = Counter(
            (eid, name.rsplit("/", 1)[-1])
            for eid, name in conn.execute(
                "SELECT t.id, n.name FROM history h JOIN tentities t USING (tpk) "
                "JOIN attr_names n USING (nid)"
            )
        )
    finally:
        conn.close()
    assert twice == 0
    assert sum(stored[key] for key in series) == instances  # what the summary line says


async def test_the_printed_temporal_examples_show_distinct_readings(
    loaded: tuple[Path, SampleCity, int],
) -> None:
    """The "Last 5 readings" example showed 4, one of them twice; "6 hourly readings each"
    averaged 7 in the last period."""
    import httpx

    from cityhub.api.app import create_app
    from cityhub.settings import Settings

    db, town, _ = loaded
    queries = dict(town.example_queries)
    last_n = next(q for d, q in queries.items() if d.startswith("Last 5"))
    periods = next(q for d, q in queries.items() if "6 hourly readings each" in d)
    app = create_app(Settings(db=str(db)))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            got = await client.get(f"/ngsi-ld/v1{last_n}&format=temporalValues")
            assert got.status_code == 200, got.text
            for attr in ("pm25", "no2"):
                stamps = [at for _, at in got.json()[attr]["values"]]
                assert len(set(stamps)) == len(stamps) == 5, (attr, stamps)
            counted = periods.replace("aggrMethods=avg,max", "aggrMethods=totalCount")
            got = await client.get(f"/ngsi-ld/v1{counted}")
            assert got.status_code == 200, got.text
            for entity in got.json():
                counts = [n for n, *_ in entity["intensity"]["totalCount"]]
                assert counts == [6] * 4, (entity["id"], counts)
    finally:
        await app.state.notifier.close()
        app.state.store.close()


def test_demo_keep_on_a_served_database_prints_nothing_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--keep printed 41 lines of examples for its port, Health included, then found another
    hub serving the database (probe 4, finding 8): it is claimed before anything is printed."""
    import fcntl
    import os

    from cityhub.cli import main
    from cityhub.demo.run import prepare_demo
    from cityhub.settings import Settings

    db = tmp_path / "demo.db"
    assert prepare_demo(Settings(db=str(db)))
    capsys.readouterr()
    served = os.open(db, os.O_RDONLY)  # as `cityhub serve` holds it
    try:
        fcntl.flock(served, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["demo", "--db", str(db), "--port", str(free_port()), "--keep"]) == 2
    finally:
        os.close(served)
    out, err = capsys.readouterr()
    assert out == ""
    assert f"another cityhub serve is using {db}" in err
