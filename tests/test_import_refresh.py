"""Re-importing a file (docs/decisions/028): only what changed is written, into --db or --url.

An unchanged value writes no temporal instance; an emptied cell or a null property deletes
its attribute; --replace deletes every attribute the file does not give. The hub's API itself
still records every write (an observation repeated is still an observation).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.cli import main
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.store.sqlite import SqliteStore
from conftest import BASE, free_port
from test_import_gtfs import feed_path
from test_serve import serving

DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"


@dataclass
class Target:
    """Where an import writes (a database file or a served hub), and how to read it back."""

    argv: list[str]
    db: Path
    url: str | None
    tenant: str

    def run(self, *args: str) -> int:
        return main(["import", *args, *self.argv, "--tenant", self.tenant, "--no-progress"])

    def current(self, eid: str) -> dict[str, Any]:
        """The entity as keyValues (compacted by the core context)."""
        if self.url is not None:
            resp = httpx.get(
                f"{self.url}{BASE}/entities/{eid}",
                params={"format": "keyValues"},
                headers={"NGSILD-Tenant": self.tenant},
                timeout=10,
            )
            assert resp.status_code == 200, resp.text
            return dict(resp.json())
        store = SqliteStore(str(self.db))
        try:
            doc = store.get(self.tenant, eid)
        finally:
            store.close()
        assert doc is not None
        attrs = {
            n.removeprefix(DEFAULT).removeprefix(NGSI_LD): v[0].get("value", v[0].get("object"))
            for n, v in doc["attrs"].items()
        }
        return {"id": eid, "type": doc["type"][0].removeprefix(DEFAULT), **attrs}

    def history(self, eid: str) -> int:
        """The entity's temporal instances, all attributes together (deletions count)."""
        with sqlite3.connect(self.db) as conn:
            row = conn.execute(
                "SELECT count(*) FROM history h JOIN tentities t ON t.tpk = h.tpk "
                "WHERE t.tenant = ? AND t.id = ?",
                (self.tenant, eid),
            ).fetchone()
        return int(row[0])


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """One served hub for the module's --url imports (each test has its own tenant)."""
    db = tmp_path_factory.mktemp("hub") / "hub.db"
    with serving(db, free_port()) as url:
        yield db, url


@pytest.fixture(params=["db", pytest.param("url", marks=pytest.mark.server)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    tenant = request.node.name.split("[")[0].removeprefix("test_")[:40]
    if request.param == "db":
        db = tmp_path / "city.db"
        return Target(["--db", str(db)], db, None, tenant)
    db, url = request.getfixturevalue("hub")
    return Target(["--url", url], db, url, tenant)


def add_attrs(target: Target, eid: str, attrs: dict[str, Any], etype: str | None = None) -> None:
    """Another client's write: attrs appended to an entity (created when etype is given)."""
    if target.url is not None:
        headers = {"NGSILD-Tenant": target.tenant}
        if etype is None:
            url = f"{target.url}{BASE}/entities/{eid}/attrs"
            resp = httpx.post(url, json=attrs, headers=headers, timeout=10)
        else:
            body = {"id": eid, "type": etype, **attrs}
            url = f"{target.url}{BASE}/entities"
            resp = httpx.post(url, json=body, headers=headers, timeout=10)
        assert resp.status_code in (201, 204), resp.text
        return
    tm = asyncio.run(ContextCache().term_map(None, count=False))
    store = SqliteStore(str(target.db))
    try:
        service = EntityService(store)
        entity = {"id": eid, "type": etype, **attrs} if etype else {"id": eid, **attrs}
        if etype:
            out = service.batch_upsert(target.tenant, [entity], tm, "replace")
        else:
            out = service.batch_merge(target.tenant, [entity], tm)
    finally:
        store.close()
    assert not out.failed, out.errors


def csv(tmp_path: Path, text: str, name: str = "parks.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def summary(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().out.splitlines()
    return [line for line in lines if line.startswith("cityhub import")][-1]


def test_reimporting_an_unchanged_file_writes_no_instance(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = csv(tmp_path, "id,status,visitors\nz1,open,10\nz2,closed,0\n")
    assert target.run("csv", v1, "--type", "Park") == 0
    assert "2 created, 0 updated, 0 unchanged, 0 rejected" in summary(capsys)
    before = target.history("urn:ngsi-ld:Park:z1")
    assert before == 2
    for _ in range(2):
        assert target.run("csv", v1, "--type", "Park") == 0
        assert "0 created, 0 updated, 2 unchanged, 0 rejected" in summary(capsys)
    assert target.history("urn:ngsi-ld:Park:z1") == before
    # one changed value is one new instance, for that attribute only
    v2 = csv(tmp_path, "id,status,visitors\nz1,open,11\nz2,closed,0\n", "v2.csv")
    assert target.run("csv", v2, "--type", "Park") == 0
    assert "0 created, 1 updated, 1 unchanged, 0 rejected" in summary(capsys)
    assert target.history("urn:ngsi-ld:Park:z1") == before + 1
    assert target.current("urn:ngsi-ld:Park:z1")["visitors"] == 11


def test_a_gtfs_feed_imported_again_writes_no_instance(
    target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = str(feed_path("sample_gtfs.zip"))
    assert target.run("gtfs", feed) == 0
    capsys.readouterr()
    with sqlite3.connect(target.db) as conn:
        rows = conn.execute("SELECT count(*) FROM history").fetchone()[0]
    assert target.run("gtfs", feed) == 0
    assert "0 created, 0 updated, 59 unchanged, 0 rejected" in summary(capsys)
    with sqlite3.connect(target.db) as conn:
        assert conn.execute("SELECT count(*) FROM history").fetchone()[0] == rows


def test_an_emptied_cell_deletes_its_attribute(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "id,status,note,lat,lon\nz1,open,closed for works,-16.9,145.7\n"
    argv = ["--type", "Park", "--lat", "lat", "--lon", "lon"]
    assert target.run("csv", csv(tmp_path, text), *argv) == 0
    assert target.current("urn:ngsi-ld:Park:z1")["note"] == "closed for works"
    emptied = csv(tmp_path, "id,status,note,lat,lon\nz1,open,,,\n", "v2.csv")
    assert target.run("csv", emptied, *argv) == 0
    assert "0 created, 1 updated, 0 unchanged, 0 rejected" in summary(capsys)
    assert target.current("urn:ngsi-ld:Park:z1") == {
        "id": "urn:ngsi-ld:Park:z1",
        "type": "Park",
        "status": "open",
    }


def test_a_null_property_or_geometry_deletes_its_attribute(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def write(geometry: Any, note: Any) -> str:
        props = {"kind": "oak", "note": note}
        feature = {"type": "Feature", "id": "t1", "geometry": geometry, "properties": props}
        path = tmp_path / "trees.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
        return str(path)

    point = {"type": "Point", "coordinates": [145.7, -16.9]}
    assert target.run("geojson", write(point, "to prune"), "--type", "Tree") == 0
    assert set(target.current("urn:ngsi-ld:Tree:t1")) == {"id", "type", "kind", "note", "location"}
    assert target.run("geojson", write(None, None), "--type", "Tree") == 0
    assert "0 created, 1 updated, 0 unchanged, 0 rejected" in summary(capsys)
    assert set(target.current("urn:ngsi-ld:Tree:t1")) == {"id", "type", "kind"}


def test_replace_deletes_what_the_file_does_not_give(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = csv(tmp_path, "id,status,note\nz1,open,busy\nz2,open,quiet\n")
    assert target.run("csv", full, "--type", "Park") == 0
    fewer = csv(tmp_path, "id,status\nz1,open\nz2,closed\n", "v2.csv")
    assert target.run("csv", fewer, "--type", "Park") == 0  # a column gone: kept by default
    assert "0 created, 1 updated, 1 unchanged, 0 rejected" in summary(capsys)
    assert target.current("urn:ngsi-ld:Park:z1")["note"] == "busy"
    history = target.history("urn:ngsi-ld:Park:z1")
    assert target.run("csv", fewer, "--type", "Park", "--replace") == 0
    assert "0 created, 2 updated, 0 unchanged, 0 rejected" in summary(capsys)
    assert target.current("urn:ngsi-ld:Park:z1") == {
        "id": "urn:ngsi-ld:Park:z1",
        "type": "Park",
        "status": "open",
    }
    assert target.history("urn:ngsi-ld:Park:z1") == history + 1  # the deletion, not status
    assert target.run("csv", fewer, "--type", "Park", "--replace") == 0
    assert "0 created, 0 updated, 2 unchanged, 0 rejected" in summary(capsys)


def test_a_repeated_id_in_one_chunk_keeps_the_files_order(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert target.run("csv", csv(tmp_path, "id,note\nz1,first\n"), "--type", "Park") == 0
    rows = csv(tmp_path, "id,note\nz1,\nz1,again\nz2,x\nz2,\n", "v2.csv")
    assert target.run("csv", rows, "--type", "Park") == 0
    assert target.current("urn:ngsi-ld:Park:z1")["note"] == "again"
    assert "note" not in target.current("urn:ngsi-ld:Park:z2")
    capsys.readouterr()
    assert target.run("csv", rows, "--type", "Park") == 0  # z1: "" then "again" again
    assert "0 created, 4 updated, 0 unchanged, 0 rejected" in summary(capsys)


@pytest.mark.server
def test_the_api_still_records_a_repeated_value(hub: tuple[Path, str]) -> None:
    """Only the importers compare: an upsert of the same value is an observation too."""
    _, url = hub
    entity = {"id": "urn:ngsi-ld:Park:api", "type": "Park", "status": "open"}
    headers = {"NGSILD-Tenant": "api"}
    for _ in range(2):
        resp = httpx.post(
            f"{url}{BASE}/entityOperations/upsert",
            params={"options": "update"},
            json=[entity],
            headers=headers,
            timeout=10,
        )
        assert resp.status_code in (201, 204), resp.text
    resp = httpx.get(
        f"{url}{BASE}/temporal/entities/urn:ngsi-ld:Park:api", headers=headers, timeout=10
    )
    assert len(resp.json()["status"]) == 2


def test_a_value_turning_between_boolean_and_number_is_written(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """true is not 1 (nor false 0), in a value, a list or a nested object."""

    def write(value: Any) -> str:
        props = {"open": value, "tags": [value, value], "spec": {"x": value}}
        feature = {"type": "Feature", "id": "b1", "geometry": None, "properties": props}
        path = tmp_path / "b.geojson"
        path.write_text(json.dumps(feature))
        return str(path)

    for old, new in ((1, True), (True, 1), (0, False)):
        assert target.run("geojson", write(old), "--type", "Park", "--replace") == 0
        assert target.run("geojson", write(new), "--type", "Park", "--replace") == 0
        assert "0 created, 1 updated, 0 unchanged, 0 rejected" in summary(capsys)
        held = target.current("urn:ngsi-ld:Park:b1")
        assert type(held["open"]) is type(new) and held["open"] == new
        assert [type(v) for v in held["tags"]] == [type(new)] * 2
        assert type(held["spec"]["x"]) is type(new)


def test_replace_with_an_emptied_cell_deletes_every_instance(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--replace: a datasetId instance of an emptied column goes too, as for a dropped one."""
    assert target.run("csv", csv(tmp_path, "id,temp,name\nr1,20,Alpha\n"), "--type", "Room") == 0
    extra = {"temp": [{"type": "Property", "value": 99, "datasetId": "urn:ds:1"}]}
    add_attrs(target, "urn:ngsi-ld:Room:r1", extra)
    emptied = csv(tmp_path, "id,temp,name\nr1,,Alpha\n", "v2.csv")
    assert target.run("csv", emptied, "--type", "Room", "--replace") == 0
    assert "0 created, 1 updated, 0 unchanged, 0 rejected" in summary(capsys)
    assert target.current("urn:ngsi-ld:Room:r1") == {
        "id": "urn:ngsi-ld:Room:r1",
        "type": "Room",
        "name": "Alpha",
    }


def test_an_attribute_named_attrs_with_a_repeated_id(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file entity with an attribute `attrs` is not taken for a stored (expanded) entity."""
    rows = csv(tmp_path, "id,attrs,x\nA1,abc,1\nA1,abc,2\nA2,5,1\nA2,5,2\n", "at.csv")
    for extra in ((), ("--replace",)):
        assert target.run("csv", rows, "--type", "Thing", *extra) == 0
        assert "0 rejected" in summary(capsys)
        assert target.current("urn:ngsi-ld:Thing:A1")["x"] == 2
        assert target.current("urn:ngsi-ld:Thing:A2")["attrs"] == 5


def test_an_entity_deleted_after_the_read_is_created_whole(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """Another client deletes the entity between the importer's read and its write: the
    upsert of the changes creates it, and the rest of what the file gives follows."""
    from cityhub.ingest.importers import sinks

    assert target.run("csv", csv(tmp_path, "id,name,temp\nq1,Alpha,20\n"), "--type", "Room") == 0
    eid = "urn:ngsi-ld:Room:q1"

    def delete() -> None:
        if target.url is not None:
            headers = {"NGSILD-Tenant": target.tenant}
            resp = httpx.delete(f"{target.url}{BASE}/entities/{eid}", headers=headers)
            assert resp.status_code == 204, resp.text
            return
        store = SqliteStore(str(target.db))
        try:
            EntityService(store).delete(target.tenant, eid)
        finally:
            store.close()

    for cls in (sinks.DbSink, sinks.HttpSink):
        read = cls._stored

        def racing(self: Any, ids: Any, read: Any = read) -> Any:
            found = read(self, ids)
            delete()
            return found

        monkeypatch.setattr(cls, "_stored", racing)
    changed = csv(tmp_path, "id,name,temp\nq1,Alpha,21\n", "v2.csv")
    assert target.run("csv", changed, "--type", "Room") == 0
    assert "1 created, 0 updated, 0 unchanged, 0 rejected" in summary(capsys)
    assert target.current(eid) == {"id": eid, "type": "Room", "name": "Alpha", "temp": 21}


def test_an_entity_stored_under_another_type_is_compared_too(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--url reads by id, as --db does: the emptied cell and --replace apply to it too."""
    eid = "urn:ngsi-ld:Room:r1"
    attrs = {"temp": {"type": "Property", "value": 7}, "name": {"type": "Property", "value": "A"}}
    add_attrs(target, eid, {**attrs, "other": {"type": "Property", "value": 5}}, "Office")
    history = target.history(eid)
    emptied = csv(tmp_path, "id,temp,name\nr1,,A\n")
    assert target.run("csv", emptied, "--type", "Room", "--replace") == 0
    assert "0 created, 1 updated, 0 unchanged, 0 rejected" in summary(capsys)
    held = target.current(eid)
    assert {k: v for k, v in held.items() if k != "type"} == {"id": eid, "name": "A"}
    assert target.history(eid) == history + 2  # the two deletions; name is not written again


def small_feed(folder: Path, stop_code: str) -> str:
    """Two agencies, two stops, one route, trip and service; no wheelchair, bikes, shape or
    parent station column anywhere, and stop_code as given (blank or not). Each agency's
    source is its agency_url, whatever the folder's name."""
    folder.mkdir(parents=True)
    tables = {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n"
        "A,Alpha,http://a.example,Australia/Brisbane\nB,Beta,http://b.example,Australia/Brisbane\n",
        "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
        "start_date,end_date\nWD,1,1,1,1,1,0,0,20260101,20261231\n",
        "stops.txt": f"stop_id,stop_name,stop_code,stop_lat,stop_lon\nS1,One,{stop_code},-16.9,145.7\n"
        "S2,Two,,-16.8,145.6\n",
        "routes.txt": "route_id,agency_id,route_short_name,route_type\nR1,A,1,3\n",
        "trips.txt": "route_id,service_id,trip_id\nR1,WD,T1\n",
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        "T1,08:00:00,08:00:00,S1,1\nT1,08:05:00,08:05:00,S2,2\n",
    }
    for name, text in tables.items():
        (folder / name).write_text(text)
    return str(folder)


def test_a_gtfs_reimport_keeps_attributes_the_feed_has_no_column_for(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only a blank cell of a column the feed has deletes; other clients' attributes stay."""
    assert target.run("gtfs", small_feed(tmp_path / "v1" / "feed", "X")) == 0
    prop = {"type": "Property", "value": "1"}
    agency = {"type": "Relationship", "object": "urn:ngsi-ld:GtfsAgency:B"}
    theirs = {
        "urn:ngsi-ld:GtfsStop:S1": {
            "wheelChairAccessible": prop,
            "operatedBy": agency,
            "hasParentStation": {"type": "Relationship", "object": "urn:ngsi-ld:GtfsStop:S2"},
        },
        "urn:ngsi-ld:GtfsTrip:T1": {
            "bikesAllowed": prop,
            "wheelChairAccessible": prop,
            "hasShape": {"type": "Relationship", "object": "urn:ngsi-ld:GtfsShape:X"},
        },
        "urn:ngsi-ld:GtfsService:WD": {"operatedBy": agency},
        "urn:ngsi-ld:GtfsRoute:R1": {"page": prop},
        "urn:ngsi-ld:GtfsStopTime:T1:1": {"stopHeadsign": prop},
    }
    for eid, attrs in theirs.items():
        add_attrs(target, eid, attrs)
    capsys.readouterr()
    assert target.run("gtfs", small_feed(tmp_path / "v2" / "feed", "")) == 0
    assert "0 created, 1 updated, 9 unchanged, 0 rejected" in summary(capsys)
    for eid, attrs in theirs.items():
        assert set(attrs) <= set(target.current(eid)), eid
    assert "code" not in target.current("urn:ngsi-ld:GtfsStop:S1")  # its cell was emptied


SERIES = ["--type", "Reading", "--id-column", "sensor", "--delimiter", "tab"]
SERIES += ["--observed-at", "time"]


def readings(tmp_path: Path, rows: list[tuple[str, int, str]], name: str = "r.tsv") -> str:
    """A time series as the README's readings.tsv: (sensor, hour of 2026-12-01, no2)."""
    lines = ["sensor\ttime\tno2"]
    lines += [f"{s}\t2026-12-01T{h:02d}:00:00Z\t{v}" for s, h, v in rows]
    return csv(tmp_path, "\n".join(lines) + "\n", name)


def series(target: Target, eid: str) -> list[tuple[str, Any]]:
    """(observedAt, value) of every no2 instance of an entity, deletions as (deletedAt, None)."""
    with sqlite3.connect(target.db) as conn:
        rows = conn.execute(
            "SELECT h.inst FROM history h JOIN tentities t ON t.tpk = h.tpk "
            "WHERE t.tenant = ? AND t.id = ? ORDER BY h.hid",
            (target.tenant, eid),
        ).fetchall()
    out = []
    for (inst,) in rows:
        doc = json.loads(inst)
        if "deletedAt" in doc:
            out.append(("deleted", None))
        else:
            out.append((doc["observedAt"], doc["value"]))
    return out


def test_reimporting_a_time_series_writes_no_instance(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An id on several rows, each at its observedAt: every row but the last differs from the
    entity's latest state, and is found in its history instead (probe 4, finding 1)."""
    rows = [(s, h, f"{h}{s[1]}") for h in (10, 11, 12) for s in ("s1", "s2")]
    path = readings(tmp_path, rows)
    assert target.run("csv", path, *SERIES) == 0
    assert "2 created, 4 updated, 0 unchanged, 0 rejected" in summary(capsys)
    first = series(target, "urn:ngsi-ld:Reading:s1")
    assert first == [(f"2026-12-01T{h}:00:00Z", int(f"{h}1")) for h in (10, 11, 12)]
    # each sensor's rows in one chunk, then one row per chunk (read per chunk)
    for chunk in ("1000", "1", "3"):
        assert target.run("csv", path, *SERIES, "--chunk-size", chunk) == 0
        assert "0 created, 0 updated, 6 unchanged, 0 rejected" in summary(capsys)
    assert series(target, "urn:ngsi-ld:Reading:s1") == first
    assert target.current("urn:ngsi-ld:Reading:s1")["no2"] == 121
    # a new reading is written, and only it
    more = readings(tmp_path, [*rows, ("s1", 13, "131")], "more.tsv")
    assert target.run("csv", more, *SERIES) == 0
    assert "0 created, 1 updated, 6 unchanged, 0 rejected" in summary(capsys)
    assert series(target, "urn:ngsi-ld:Reading:s1") == [*first, ("2026-12-01T13:00:00Z", 131)]


def test_a_corrected_past_reading_goes_to_the_history_only(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reading changed at a time before the entity's own is added to its history (the
    temporal API), so the entity keeps its latest reading; imported again, nothing is written."""
    eid = "urn:ngsi-ld:Reading:s1"
    path = readings(tmp_path, [("s1", h, str(h)) for h in (10, 11, 12)])
    assert target.run("csv", path, *SERIES) == 0
    fixed = readings(tmp_path, [("s1", 10, "10"), ("s1", 11, "99"), ("s1", 12, "12")], "f.tsv")
    assert target.run("csv", fixed, *SERIES) == 0
    assert "0 created, 1 updated, 2 unchanged, 0 rejected" in summary(capsys)
    assert target.current(eid)["no2"] == 12
    written = series(target, eid)
    assert written[3:] == [("2026-12-01T11:00:00Z", 99)]
    assert target.run("csv", fixed, *SERIES) == 0
    assert "0 created, 0 updated, 3 unchanged, 0 rejected" in summary(capsys)
    assert series(target, eid) == written


def test_a_series_newest_first_keeps_the_newest_reading(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows in any time order: the entity holds its latest reading, the others are history."""
    eid = "urn:ngsi-ld:Reading:s1"
    path = readings(tmp_path, [("s1", h, str(h)) for h in (12, 11, 10)])
    assert target.run("csv", path, *SERIES) == 0
    assert "1 created, 2 updated, 0 unchanged, 0 rejected" in summary(capsys)
    assert target.current(eid)["no2"] == 12
    times = sorted(t for t, _ in series(target, eid))
    assert times == [f"2026-12-01T{h}:00:00Z" for h in (10, 11, 12)]
    assert target.run("csv", path, *SERIES) == 0
    assert "0 created, 0 updated, 3 unchanged, 0 rejected" in summary(capsys)
    assert len(series(target, eid)) == 3


def test_an_empty_reading_deletes_nothing_observed_later(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row whose cell is empty deletes the value as it stood then; imported again, it does
    not delete the later reading the file goes on to give."""
    rows = [("s1", 10, "10"), ("s1", 11, ""), ("s1", 12, "12"), ("s2", 10, "7"), ("s2", 11, "")]
    path = readings(tmp_path, rows)
    assert target.run("csv", path, *SERIES) == 0
    first = series(target, "urn:ngsi-ld:Reading:s1")
    assert first == [
        ("2026-12-01T10:00:00Z", 10),
        ("deleted", None),
        ("2026-12-01T12:00:00Z", 12),
    ]
    assert "no2" not in target.current("urn:ngsi-ld:Reading:s2")  # its last row emptied it
    capsys.readouterr()
    for chunk in ("1000", "1"):
        assert target.run("csv", path, *SERIES, "--chunk-size", chunk) == 0
        assert "0 created, 0 updated, 5 unchanged, 0 rejected" in summary(capsys)
    assert series(target, "urn:ngsi-ld:Reading:s1") == first
    assert target.current("urn:ngsi-ld:Reading:s1")["no2"] == 12


@pytest.mark.server
def test_a_time_series_longer_than_a_temporal_page_is_read_whole(tmp_path: Path) -> None:
    """--url reads the history through pages of CITYHUB_TEMPORAL_LIMIT instances (206)."""
    rows = [("s1", h, str(h)) for h in range(24)]
    path = readings(tmp_path, rows)
    env = {"CITYHUB_TEMPORAL_LIMIT": "5"}
    with serving(tmp_path / "hub.db", free_port(), env) as url:
        argv = ["import", "csv", path, *SERIES, "--url", url, "--no-progress"]
        assert main(argv) == 0
        assert main(argv) == 0
    target = Target([], tmp_path / "hub.db", None, "")
    assert len(series(target, "urn:ngsi-ld:Reading:s1")) == 24


def test_history_reads_group_entities_of_about_the_same_time() -> None:
    """One read per group of entities whose rows fall in about the same span, not one per
    entity, nor one span from the first entity's rows to the last's (years of history)."""
    from cityhub.ingest.importers.refresh import SPAN_FLOOR, _windows

    day = SPAN_FLOOR
    wanted = {
        "a": (0.0, day / 2, {"x"}),
        "b": (day / 4, day, {"y"}),
        "c": (400 * day, 401 * day, {"x"}),
    }
    spans = _windows(wanted)
    assert [(s.ids, s.attrs, s.start, s.end) for s in spans] == [
        (("a", "b"), ("x", "y"), 0.0, day),
        (("c",), ("x",), 400 * day, 401 * day),
    ]
