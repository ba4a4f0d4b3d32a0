"""`cityhub import gtfs`: real feeds become Smart Data Models entities whose references resolve."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.cli import main
from cityhub.ngsild.context import ContextCache
from cityhub.store.base import EntityQuery
from cityhub.store.sqlite import SqliteStore
from conftest import BASE, VOCAB, ContextServer, free_port
from test_serve import serving


def _shared_data() -> Path:
    """The shared benchmark data: $CITYHUB_SHARED_DATA, else ../shared/data beside the
    checkout, else the workplace's /work/shared/data (a CI clone may live elsewhere)."""
    env = os.environ.get("CITYHUB_SHARED_DATA")
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside if beside.is_dir() else Path("/work/shared/data")


GTFS_DIR = _shared_data() / "gtfs"
CORE = ContextCache().core


def feed_path(name: str) -> Path:
    """A shared feed; skipped when absent, except on CI (CI=true), where it must be there."""
    path = GTFS_DIR / name
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing; CI must provide the shared GTFS feeds")
        pytest.skip(f"{path} not found (shared test data outside the repository)")
    return path


def tables(path: Path) -> dict[str, list[dict[str, str]]]:
    """Every table of a zipped feed, parsed here independently of the importer."""
    out: dict[str, list[dict[str, str]]] = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            text = zf.read(name).decode("utf-8-sig")
            rows = list(csv.DictReader(io.StringIO(text)))
            out[name] = [r for r in rows if any((v or "").strip() for v in r.values())]
    return out


def expected_counts(path: Path) -> Counter[str]:
    """Entities per type the importer must produce, worked out from the files themselves."""
    t = tables(path)
    services = {
        r["service_id"] for n in ("calendar.txt", "calendar_dates.txt") for r in t.get(n, [])
    }
    shapes = {r["shape_id"] for r in t.get("shapes.txt", [])}
    counts = Counter(
        {
            "GtfsAgency": len(t["agency.txt"]),
            "GtfsStop": len(t["stops.txt"]),
            "GtfsRoute": len(t["routes.txt"]),
            "GtfsTrip": len(t["trips.txt"]),
            "GtfsStopTime": len(t["stop_times.txt"]),
            "GtfsService": len(services),
            "GtfsCalendarRule": len(t.get("calendar.txt", [])),
            "GtfsCalendarDateRule": len(t.get("calendar_dates.txt", [])),
            "GtfsShape": len(shapes),
        }
    )
    return +counts  # drop zero counts


def run(*argv: str) -> int:
    """The `cityhub` command, in-process."""
    return main([*argv])


def stored(db: Path, tenant: str = "") -> list[dict[str, Any]]:
    """Every entity in a database (stored form)."""
    store = SqliteStore(db)
    try:
        docs, _ = store.query(tenant, EntityQuery(limit=10_000_000))
    finally:
        store.close()
    return docs


def per_type(docs: list[dict[str, Any]]) -> Counter[str]:
    """Entities per compacted type."""
    return Counter(CORE.compact(t) for d in docs for t in d["type"])


def relationship_targets(docs: list[dict[str, Any]]) -> Counter[str]:
    """Relationships per attribute name; fails when one points at an entity not imported."""
    ids = {d["id"] for d in docs}
    dangling = []
    names: Counter[str] = Counter()
    for d in docs:
        for iri, instances in d["attrs"].items():
            for inst in instances:
                if inst["type"] == "Relationship":
                    names[CORE.compact(iri)] += 1
                    if inst["object"] not in ids:
                        dangling.append((d["id"], CORE.compact(iri), inst["object"]))
    assert not dangling, f"{len(dangling)} relationships point nowhere, e.g. {dangling[:3]}"
    return names


def summary_line(out: str) -> str:
    """The importer's summary line (stdout)."""
    return [line for line in out.splitlines() if line.startswith("cityhub import")][-1]


# -- the GTFS reference feed ----------------------------------------------------------------


def test_sample_feed_types_counts_and_references(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = feed_path("sample_gtfs.zip")
    db = tmp_path / "sample.db"
    assert run("import", "gtfs", str(path), "--db", str(db), "--no-progress") == 0
    docs = stored(db)
    assert per_type(docs) == expected_counts(path)
    names = relationship_targets(docs)
    for rel in ("hasTrip", "hasStop", "hasRoute", "hasService", "operatedBy"):
        assert names[rel] > 0, f"no {rel} relationship imported"
    out = capsys.readouterr()
    assert f"{len(docs)} created, 0 updated, 0 unchanged, 0 rejected" in summary_line(out.out)
    assert "not imported: " in out.err and "frequencies.txt" in out.err


def test_sample_feed_entities_follow_the_smart_data_models(tmp_path: Path) -> None:
    db = tmp_path / "sample.db"
    assert (
        run("import", "gtfs", str(feed_path("sample_gtfs.zip")), "--db", str(db), "--no-progress")
        == 0
    )
    store = SqliteStore(db)
    try:
        stop_time = store.get("", "urn:ngsi-ld:GtfsStopTime:STBA:1")
        stop = store.get("", "urn:ngsi-ld:GtfsStop:STAGECOACH")
        trip = store.get("", "urn:ngsi-ld:GtfsTrip:AB1")
        route = store.get("", "urn:ngsi-ld:GtfsRoute:AB")
    finally:
        store.close()
    assert stop_time and stop and trip and route

    def value(doc: dict[str, Any], name: str) -> Any:
        inst = doc["attrs"][CORE.expand(name)][0]
        return inst.get("value", inst.get("object"))

    assert value(stop_time, "hasTrip") == "urn:ngsi-ld:GtfsTrip:STBA"
    assert value(stop_time, "hasStop") == "urn:ngsi-ld:GtfsStop:STAGECOACH"
    assert value(stop_time, "arrivalTime") == "06:00:00"  # 6:00:00 in the feed, padded
    assert value(stop_time, "stopSequence") == 1
    assert value(stop, "location") == {"type": "Point", "coordinates": [-116.751677, 36.915682]}
    assert value(stop, "name") == "Stagecoach Hotel & Casino (Demo)"
    assert value(trip, "hasRoute") == "urn:ngsi-ld:GtfsRoute:AB"
    assert value(trip, "hasService") == "urn:ngsi-ld:GtfsService:FULLW"
    assert value(trip, "headSign") == "to Bullfrog"
    assert value(trip, "direction") == 0
    assert value(route, "shortName") == "10"
    assert value(route, "name") == "Airport - Bullfrog"
    assert value(route, "routeType") == "3"
    assert value(route, "operatedBy") == "urn:ngsi-ld:GtfsAgency:DTA"


def test_reimport_is_an_idempotent_upsert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = feed_path("sample_gtfs.zip")
    db = tmp_path / "sample.db"
    assert run("import", "gtfs", str(path), "--db", str(db), "--no-progress") == 0
    first = stored(db)
    capsys.readouterr()
    assert run("import", "gtfs", str(path), "--db", str(db), "--no-progress") == 0
    again = stored(db)
    assert f"0 created, 0 updated, {len(first)} unchanged, 0 rejected" in summary_line(
        capsys.readouterr().out
    )

    def content(docs: list[dict[str, Any]]) -> dict[str, Any]:
        keep = ("type", "value", "object")
        return {
            d["id"]: {
                n: [{k: i[k] for k in keep if k in i} for i in v] for n, v in d["attrs"].items()
            }
            for d in docs
        }

    assert content(again) == content(first)


def test_an_unpacked_folder_with_byte_order_marks_imports_the_same(tmp_path: Path) -> None:
    path = feed_path("sample_gtfs.zip")
    folder = tmp_path / "feed"
    folder.mkdir()
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            (folder / name).write_bytes(
                b"\xef\xbb\xbf" + zf.read(name).removeprefix(b"\xef\xbb\xbf")
            )
    db = tmp_path / "folder.db"
    assert run("import", "gtfs", str(folder), "--db", str(db), "--no-progress") == 0
    assert per_type(stored(db)) == expected_counts(path)


def _patched_feed(tmp_path: Path, changes: dict[str, bytes | None]) -> Path:
    """A copy of the sample feed with some tables replaced (bytes) or removed (None)."""
    source = feed_path("sample_gtfs.zip")
    target = tmp_path / "patched.zip"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for name in zin.namelist():
            if name not in changes:
                zout.writestr(name, zin.read(name))
        for name, data in changes.items():
            if data is not None:
                zout.writestr(name, data)
    return target


def test_a_bad_row_is_rejected_and_its_neighbours_are_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stops = (
        b"stop_id,stop_name,stop_lat,stop_lon\n"
        b"A,First,36.0,-116.0\n"
        b"B,Broken,north,-116.0\n"
        b",No id,36.0,-116.0\n"
        b"C,Third,36.1,-116.1\n"
    )
    feed = _patched_feed(tmp_path, {"stops.txt": stops})
    db = tmp_path / "bad.db"
    assert run("import", "gtfs", str(feed), "--db", str(db), "--no-progress") == 1
    ids = {d["id"] for d in stored(db)}
    assert {"urn:ngsi-ld:GtfsStop:A", "urn:ngsi-ld:GtfsStop:C"} <= ids
    assert "urn:ngsi-ld:GtfsStop:B" not in ids
    err = capsys.readouterr()
    assert (
        "stops.txt line 3 urn:ngsi-ld:GtfsStop:B: Bad request data: stop_lat 'north' is not a number"
        in err.err
    )
    assert "stops.txt line 4: Bad request data: stop_id is blank" in err.err
    assert "2 rejected" in summary_line(err.out)
    assert "Traceback" not in err.err


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stops.txt": None}, "missing stops.txt"),
        ({"calendar.txt": None, "calendar_dates.txt": None}, "calendar.txt or calendar_dates.txt"),
        ({"trips.txt": b"route_id,service_id,headsign\nAB,FULLW,x\n"}, "trips.txt has no trip_id"),
        ({"stops.txt": b"stop_id,stop_name\nA,\xff\xfe\n"}, "stops.txt line 2: not UTF-8"),
    ],
)
def test_an_unusable_feed_exits_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, bytes | None],
    message: str,
) -> None:
    feed = _patched_feed(tmp_path, changes)
    assert run("import", "gtfs", str(feed), "--db", str(tmp_path / "x.db"), "--no-progress") == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_not_a_feed_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_text("not a zip")
    assert run("import", "gtfs", str(junk), "--db", str(tmp_path / "x.db")) == 2
    assert run("import", "gtfs", str(tmp_path / "absent.zip"), "--db", str(tmp_path / "x.db")) == 2
    err = capsys.readouterr().err
    assert "neither a zip file nor a folder" in err
    assert "no such file or folder" in err


def _zip_with(tmp_path: Path, *, flag: int = 0, method: int | None = None) -> Path:
    """The sample feed deflated, its headers given a flag bit or a compression method."""
    plain = tmp_path / "plain.zip"
    with (
        zipfile.ZipFile(feed_path("sample_gtfs.zip")) as zin,
        zipfile.ZipFile(plain, "w", zipfile.ZIP_DEFLATED) as zout,
    ):
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
    data = bytearray(plain.read_bytes())
    # (signature, offset of the flag field, offset of the method field) in each header
    for signature, flags_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at >= 0:
            data[at + flags_at] |= flag
            if method is not None:
                data[at + method_at : at + method_at + 2] = method.to_bytes(2, "little")
            at = data.find(signature, at + 4)
    target = tmp_path / "odd.zip"
    target.write_bytes(bytes(data))
    return target


def _damaged_zip(tmp_path: Path) -> Path:
    """The sample feed deflated, with bytes inside the compressed stops.txt inverted."""
    plain = _zip_with(tmp_path)
    data = bytearray(plain.read_bytes())
    start = data.find(b"stops.txt") + len("stops.txt") + 8
    for i in range(start, start + 24):
        data[i] ^= 0xFF
    plain.write_bytes(bytes(data))
    return plain


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_damaged_zip, "damaged"),
        (lambda tmp: _zip_with(tmp, flag=1), "password required"),
        (lambda tmp: _zip_with(tmp, method=99), "re-zip it with deflate"),
    ],
    ids=["damaged", "encrypted", "unknown-compression"],
)
def test_a_zip_that_cannot_be_read_exits_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Path],
    message: str,
) -> None:
    feed = make(tmp_path)
    assert run("import", "gtfs", str(feed), "--db", str(tmp_path / "x.db"), "--no-progress") == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


# -- a real city: Cairns --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cairns(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, list[dict[str, Any]], str]]:
    """The Cairns feed imported once into one database (about 40,000 entities)."""
    path = feed_path("cairns_gtfs.zip")
    db = tmp_path_factory.mktemp("cairns") / "cairns.db"
    out = io.StringIO()
    with redirect_stdout(out):
        code = run("import", "gtfs", str(path), "--db", str(db), "--no-progress")
    assert code == 0, out.getvalue()
    yield path, stored(db), out.getvalue()
    shutil.rmtree(db.parent, ignore_errors=True)


def test_cairns_counts_per_type_match_the_feed(
    cairns: tuple[Path, list[dict[str, Any]], str],
) -> None:
    path, docs, out = cairns
    expected = expected_counts(path)
    assert per_type(docs) == expected
    assert expected["GtfsRoute"] == 22 and expected["GtfsStop"] == 416  # the feed we think it is
    assert f"{sum(expected.values()):,} created, 0 updated, 0 unchanged, 0 rejected" in out


def test_cairns_relationships_resolve(cairns: tuple[Path, list[dict[str, Any]], str]) -> None:
    _path, docs, _out = cairns
    names = relationship_targets(docs)
    for rel in ("hasTrip", "hasStop", "hasRoute", "hasService", "hasShape", "operatedBy"):
        assert names[rel] > 0, f"no {rel} relationship imported"
    # Cairns names no agency_id: the single agency still operates every route.
    routes = [d for d in docs if CORE.compact(d["type"][0]) == "GtfsRoute"]
    assert all(CORE.expand("operatedBy") in r["attrs"] for r in routes)


# -- the --url sink against a real hub ------------------------------------------------------


@pytest.mark.server
def test_url_sink_upserts_through_a_running_hub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], context_server: ContextServer
) -> None:
    path = feed_path("sample_gtfs.zip")
    stops = b"stop_id,stop_name,stop_lat,stop_lon\nA,First,36.0,-116.0\nB,Broken,north,-116.0\n"
    broken = _patched_feed(tmp_path, {"stops.txt": stops})
    expected = expected_counts(path)
    with serving(tmp_path / "hub.db", free_port()) as url:
        argv = ("--url", url, "--tenant", "city", "--no-progress")
        assert run("import", "gtfs", str(path), *argv) == 0
        first = summary_line(capsys.readouterr().out)
        assert f"{sum(expected.values())} created, 0 updated, 0 unchanged, 0 rejected" in first
        assert run("import", "gtfs", str(path), *argv) == 0
        assert f"0 created, 0 updated, {sum(expected.values())} unchanged" in summary_line(
            capsys.readouterr().out
        )
        headers = {"NGSILD-Tenant": "city"}
        resp = httpx.get(
            f"{url}{BASE}/entities",
            params={"type": "GtfsStop", "count": "true", "limit": "0"},
            headers=headers,
            timeout=5,
        )
        assert resp.headers["NGSILD-Results-Count"] == str(expected["GtfsStop"])
        resp = httpx.get(
            f"{url}{BASE}/entities/urn:ngsi-ld:GtfsStopTime:STBA:1", headers=headers, timeout=5
        )
        assert resp.json()["hasStop"]["object"] == "urn:ngsi-ld:GtfsStop:STAGECOACH"
        # A bad row is rejected, the rest of the feed is still stored.
        assert run("import", "gtfs", str(broken), *argv) == 1
        out = capsys.readouterr()
        assert "stops.txt line 3 urn:ngsi-ld:GtfsStop:B: Bad request data: stop_lat" in out.err
        assert "1 rejected" in summary_line(out.out)
        resp = httpx.get(f"{url}{BASE}/entities/urn:ngsi-ld:GtfsStop:A", headers=headers, timeout=5)
        assert resp.status_code == 200
        # Nothing landed in the default tenant.
        resp = httpx.get(f"{url}{BASE}/entities", params={"type": "GtfsStop"}, timeout=5)
        assert resp.status_code == 404 or resp.json() == []
        # GeoJSON in a user @context (sent as a Link header); a feature the API's validation
        # refuses is reported, its neighbours are stored.
        features = [
            {"type": "Feature", "id": "r1", "geometry": None, "properties": {"temperature": 20}},
            {"type": "Feature", "id": "r2", "geometry": None, "properties": {"@bad": 1}},
            {"type": "Feature", "id": "r3", "geometry": None, "properties": {"temperature": 22}},
        ]
        geojson = tmp_path / "rooms.geojson"
        geojson.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        ctx = context_server.url("/ctx/rooms.jsonld")
        assert (
            run("import", "geojson", str(geojson), "--type", "Room", "--context", ctx, *argv) == 1
        )
        out = capsys.readouterr()
        assert "features[1] urn:ngsi-ld:Room:r2: Bad request data: property '@bad'" in out.err
        assert "2 created, 0 updated, 0 unchanged, 1 rejected" in summary_line(out.out)
        resp = httpx.get(
            f"{url}{BASE}/entities/urn:ngsi-ld:Room:r3",
            headers={**headers, "Link": f'<{ctx}>; rel="http://www.w3.org/ns/json-ld#context"'},
            timeout=5,
        )
        assert resp.json()["temperature"]["value"] == 22
        resp = httpx.get(f"{url}{BASE}/entities/urn:ngsi-ld:Room:r3", headers=headers, timeout=5)
        assert set(resp.json()) == {"id", "type", VOCAB + "temperature"}  # in the core context


def test_a_zip_bomb_member_is_refused_before_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A member that inflates far beyond any table (1 GiB of one line from a 1 MB zip took
    2.2 GB of memory) is refused from its sizes in the zip directory."""
    bomb = b"trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" + b"a" * (200 << 20)
    feed = _patched_feed(tmp_path, {"stop_times.txt": None})
    with zipfile.ZipFile(feed, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("stop_times.txt", bomb)
    del bomb
    assert run("import", "gtfs", str(feed), "--db", str(tmp_path / "x.db"), "--no-progress") == 2
    err = capsys.readouterr().err
    assert "stop_times.txt" in err and "zip bomb" in err
    assert "Traceback" not in err


def test_a_date_that_is_no_calendar_day_rejects_its_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """20241331 was stored as 2024-13-31: the shape alone was checked."""
    calendar = (
        b"service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
        b"OK,1,1,1,1,1,0,0,20240101,20241231\n"
        b"BADMONTH,1,1,1,1,1,0,0,20240101,20241331\n"
        b"BADDAY,1,1,1,1,1,0,0,20230229,20231231\n"
    )
    feed = _patched_feed(tmp_path, {"calendar.txt": calendar})
    db = tmp_path / "dates.db"
    assert run("import", "gtfs", str(feed), "--db", str(db), "--no-progress") == 1
    ids = {d["id"] for d in stored(db)}
    assert "urn:ngsi-ld:GtfsCalendarRule:OK" in ids
    assert (
        not {"urn:ngsi-ld:GtfsCalendarRule:BADMONTH", "urn:ngsi-ld:GtfsCalendarRule:BADDAY"} & ids
    )
    err = capsys.readouterr().err
    assert "end_date '20241331' is not a calendar date" in err
    assert "start_date '20230229' is not a calendar date" in err


def _source(db: Path) -> Any:
    store = SqliteStore(db)
    try:
        agency = store.get("", "urn:ngsi-ld:GtfsAgency:DTA")
    finally:
        store.close()
    assert agency is not None
    return agency["attrs"][CORE.expand("source")][0]["value"]


def test_an_agencys_source_is_where_the_feed_comes_from_not_its_file_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same feed downloaded under a new name each night rewrote every agency's source
    (probe 4, finding 7): it is feed_info.txt's publisher, else the agency's own URL, or
    --source."""
    db = tmp_path / "feed.db"
    monday = tmp_path / "gtfs-2026-12-07.zip"
    monday.write_bytes(feed_path("sample_gtfs.zip").read_bytes())
    assert run("import", "gtfs", str(monday), "--db", str(db), "--no-progress") == 0
    assert _source(db) == "http://google.com"  # agency_url: feed_info.txt names no publisher
    tuesday = tmp_path / "gtfs-2026-12-08.zip"
    tuesday.write_bytes(monday.read_bytes())
    capsys.readouterr()
    assert run("import", "gtfs", str(tuesday), "--db", str(db), "--no-progress") == 0
    assert "0 created, 0 updated, 59 unchanged" in summary_line(capsys.readouterr().out)
    info = b"feed_publisher_name,feed_publisher_url,feed_lang\nDTA,https://transit.example/,en\n"
    published = _patched_feed(tmp_path, {"feed_info.txt": info})
    assert run("import", "gtfs", str(published), "--db", str(db), "--no-progress") == 0
    assert _source(db) == "https://transit.example/"
    given = ["--source", "https://data.example/gtfs.zip"]
    assert run("import", "gtfs", str(published), *given, "--db", str(db), "--no-progress") == 0
    assert _source(db) == "https://data.example/gtfs.zip"
    err = capsys.readouterr().err
    assert "not imported:" in err and "feed_info.txt" not in err  # it is read, for the source


def test_a_quote_left_open_rejects_its_rows_instead_of_swallowing_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A quote never closed took the next stop into the last one's name, exit 0 (probe
    finding 1); now the row is rejected where the quote opened, with the lines it took."""
    stops = (
        b"stop_id,stop_name,stop_lat,stop_lon\n"
        b"A,First,36.0,-116.0\n"
        b'B,"Broken,36.0,-116.0\n'
        b"C,Third,36.1,-116.1\n"
    )
    feed = _patched_feed(tmp_path, {"stops.txt": stops})
    db = tmp_path / "open.db"
    assert run("import", "gtfs", str(feed), "--db", str(db), "--no-progress") == 1
    ids = {d["id"] for d in stored(db)}
    assert "urn:ngsi-ld:GtfsStop:A" in ids
    assert "urn:ngsi-ld:GtfsStop:B" not in ids  # not stored with a name of three lines
    err = capsys.readouterr()
    assert "stops.txt line 3: Bad request data: a quoted cell opened on line 3 is never closed" in (
        err.err
    )
    assert "2 rejected" in summary_line(err.out)  # B and the C it swallowed


def test_an_over_long_cell_rejects_its_row_and_the_feed_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cell over the csv module's limit stopped the whole feed, exit 2, with no line
    (probe finding 2); now that row alone is rejected, named by its line."""
    stops = (
        b"stop_id,stop_name,stop_lat,stop_lon\n"
        b"A,First,36.0,-116.0\n"
        b'B,"' + b"x" * 140_000 + b'",36.0,-116.0\n'
        b"C,Third,36.1,-116.1\n"
    )
    feed = _patched_feed(tmp_path, {"stops.txt": stops})
    db = tmp_path / "long.db"
    assert run("import", "gtfs", str(feed), "--db", str(db), "--no-progress") == 1
    ids = {d["id"] for d in stored(db)}
    assert {"urn:ngsi-ld:GtfsStop:A", "urn:ngsi-ld:GtfsStop:C"} <= ids
    assert "urn:ngsi-ld:GtfsStopTime:STBA:1" in ids  # the tables after it were read
    err = capsys.readouterr()
    assert "stops.txt line 3: Bad request data: a cell is longer than 131,072 characters" in (
        err.err
    )
    assert "1 rejected" in summary_line(err.out)


def test_a_broken_shape_line_rejects_its_shape_and_keeps_the_stored_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line of shapes.txt that is not valid CSV is rejected, with the shape its first cell
    names (as a point with a bad value rejects it): the stored shape stays as it was, not
    redrawn without that point."""
    head = b"shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
    s_points = b"S,36.0,-116.0,1\nS,36.1,-116.1,2\nS,36.2,-116.2,3\n"
    t_points = b"T,36.0,-116.0,1\nT,36.1,-116.1,2\n"
    db = tmp_path / "shape.db"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    both = _patched_feed(tmp_path / "a", {"shapes.txt": head + s_points + t_points})
    assert run("import", "gtfs", str(both), "--db", str(db), "--no-progress") == 0
    broken = head + s_points.replace(b"S,36.1,", b'S,"36.1"x,')  # T gone, S broken
    feed = _patched_feed(tmp_path / "b", {"shapes.txt": broken})
    capsys.readouterr()
    assert run("import", "gtfs", str(feed), "--db", str(db), "--no-progress", "--prune") == 1
    err = capsys.readouterr()
    assert "shapes.txt line 3: Bad request data: text follows a quoted cell" in err.err
    assert "shape 'S' has a bad point (line 3 is not valid CSV)" in err.err
    assert "2 rejected" in summary_line(err.out)  # the line, and its shape
    ids = {d["id"] for d in stored(db)}
    assert {"urn:ngsi-ld:GtfsShape:S", "urn:ngsi-ld:GtfsShape:T"} <= ids
    (shape,) = [d for d in stored(db) if d["id"] == "urn:ngsi-ld:GtfsShape:S"]
    assert (
        len(shape["attrs"]["https://uri.etsi.org/ngsi-ld/location"][0]["value"]["coordinates"]) == 3
    )


def test_a_row_without_its_trailing_cells_deletes_nothing(tmp_path: Path) -> None:
    """A stops.txt row that stops after its name (some feeds leave trailing empty cells out)
    was read as blank cells: a re-import deleted the stop's stored location."""
    db = tmp_path / "short.db"
    feed = str(feed_path("sample_gtfs.zip"))
    assert run("import", "gtfs", feed, "--db", str(db), "--no-progress") == 0
    stops = (
        b"stop_id,stop_name,stop_desc,stop_lat,stop_lon,zone_id,stop_url\n"
        b"FUR_CREEK_RES,Furnace Creek Resort (Demo)\n"
        b"BEATTY_AIRPORT,Nye County Airport (Demo),,,,,\n"
    )
    short = _patched_feed(tmp_path, {"stops.txt": stops})
    assert run("import", "gtfs", str(short), "--db", str(db), "--no-progress") == 0
    by_id = {d["id"]: d for d in stored(db)}
    location = "https://uri.etsi.org/ngsi-ld/location"
    assert location in by_id["urn:ngsi-ld:GtfsStop:FUR_CREEK_RES"]["attrs"]  # kept
    assert location not in by_id["urn:ngsi-ld:GtfsStop:BEATTY_AIRPORT"]["attrs"]  # emptied


def test_a_table_not_in_utf8_is_told_how_to_convert_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cp1252 stops.txt was told to `try --encoding cp949`, a flag `import gtfs` lacks."""
    stops = "stop_id,stop_name,stop_lat,stop_lon\nA,Gare de l'Est \u00e9,48.8,2.3\n"
    feed = _patched_feed(tmp_path, {"stops.txt": stops.encode("cp1252")})
    assert run("import", "gtfs", str(feed), "--db", str(tmp_path / "x.db"), "--no-progress") == 2
    err = capsys.readouterr().err
    assert "stops.txt line 2: not UTF-8 text" in err
    assert "--encoding" not in err
    assert "GTFS tables are UTF-8: convert it (iconv -f cp1252 -t utf-8)" in err


def test_references_to_rows_the_feed_lacks_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stop time naming a stop stops.txt lacks was stored pointing nowhere, unsaid."""
    times = (
        b"trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        b"STBA,6:00:00,6:00:00,STAGECOACH,1\n"
        b"STBA,6:20:00,6:20:00,NOWHERE,2\n"
        b"GHOST,25:30:00,25:30:00,STAGECOACH,1\n"
    )
    feed = _patched_feed(tmp_path, {"stop_times.txt": times})
    assert run("import", "gtfs", str(feed), "--db", str(tmp_path / "r.db"), "--no-progress") == 0
    err = capsys.readouterr().err
    assert (
        "cityhub import: stop_times.txt: 1 row names a stop_id that stops.txt does not have "
        "(line 3: NOWHERE): its hasStop points at no entity" in err
    )
    assert "1 row names a trip_id that trips.txt does not have (line 4: GHOST)" in err
    assert "hasRoute" not in err and "hasService" not in err  # the sample's own are whole


def test_a_shape_sequence_past_64_bits_rejects_its_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shape_pt_sequence too large for SQLite ended the import in a traceback once the
    points went to the import's ledger; it is the shape's bad point, the rest is stored."""
    head = b"shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
    points = (
        b"S,36.0,-116.0,1\nS,36.1,-116.1,99999999999999999999\nT,36.0,-116.0,1\nT,36.1,-116.1,2\n"
    )
    feed = _patched_feed(tmp_path, {"shapes.txt": head + points})
    db = tmp_path / "shape.db"
    for progress in ((), ("--no-progress",)):  # the bar's estimate reads the shapes first
        assert run("import", "gtfs", str(feed), "--db", str(db), *progress) == 1
        err = capsys.readouterr()
        assert "shape 'S' has a bad point (line 3: shape_pt_sequence" in err.err, err.err
        assert "1 rejected" in summary_line(err.out)
    ids = {d["id"] for d in stored(db)}
    assert "urn:ngsi-ld:GtfsShape:T" in ids and "urn:ngsi-ld:GtfsShape:S" not in ids
