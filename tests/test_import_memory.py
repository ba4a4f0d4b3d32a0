"""An import's id bookkeeping stays out of Python memory (decision 092): what the prune and a
GTFS feed's repeated-id check keep per row goes to a temporary SQLite ledger, so a country's
feed (10 million stop times took 2-3 GB) fits a town's laptop. Measured with tracemalloc on
small inputs: the old sets grew by about 150 bytes per id; the bound is well under that.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

from cityhub.ingest.importers.gtfs import FEED_LINKS, GtfsSource
from cityhub.ingest.importers.gtfsrefs import References
from cityhub.ingest.importers.prune import FeedScope, Links, Seen, settle
from cityhub.ingest.importers.records import Record

ROWS = 60_000
BOUND = 4 * 1024 * 1024  # bytes of Python memory the bookkeeping of ROWS ids may peak at
U = "urn:ngsi-ld:"


def peak(work: Callable[[], object]) -> int:
    """The most Python memory `work` held at once beyond what it started with."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def stop_time(i: int) -> Record:
    eid = f"{U}GtfsStopTime:T{i // 40}:{i % 40 + 1}"
    return Record("stop_times.txt", {"id": eid, "type": "GtfsStopTime"}, eid=eid)


def test_the_ids_a_file_named_are_not_held_in_memory() -> None:
    seen = Seen()
    try:

        def note() -> None:
            for i in range(ROWS):
                seen.note(stop_time(i))

        assert peak(note) < BOUND
        assert f"{U}GtfsStopTime:T0:1" in seen and f"{U}GtfsStopTime:T0:41" not in seen
        assert seen.settled("GtfsStopTime", None) == ROWS
        assert seen.settled("GtfsStopTime", f"{U}GtfsStopTime:T1:") == 40
    finally:
        seen.close()


def small_feed(folder: Path, **tables: list[str]) -> None:
    """A feed of one agency, stop, route and service; each table given (name without .txt:
    its lines) added or in place of the default."""
    texts = {
        "agency": [
            "agency_id,agency_name,agency_url,agency_timezone",
            "A,Bus,https://a.example,Asia/Seoul",
        ],
        "stops": ["stop_id,stop_name,stop_lat,stop_lon", "S,S,37.5,127.0"],
        "routes": ["route_id,route_type", "R,3"],
        "calendar": [
            "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,"
            "end_date",
            "W,1,1,1,1,1,0,0,20260101,20261231",
        ],
        "trips": ["route_id,service_id,trip_id", "R,W,T0"],
        "stop_times": ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"],
        **tables,
    }
    for name, lines in texts.items():
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")


def test_a_feed_s_repeated_id_check_is_not_held_in_memory(tmp_path: Path) -> None:
    trips = ["route_id,service_id,trip_id"] + [f"R,W,T{t}" for t in range(ROWS // 40)]
    times = ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"]
    times += [f"T{i // 40},08:00:00,08:00:00,S,{i % 40 + 1}" for i in range(ROWS)]
    times.append("T0,08:00:00,08:00:00,S,1")  # the same stop time again: still refused
    small_feed(tmp_path, trips=trips, stop_times=times)
    source = GtfsSource(tmp_path)
    errors: list[Record] = []

    def read() -> None:
        errors.extend(r for r in source if r.error is not None)

    assert peak(read) < BOUND
    assert [(r.where, r.error.detail if r.error else "") for r in errors] == [
        (
            f"stop_times.txt line {ROWS + 2}",
            "the same entity as line 2 (a repeated GTFS id)",
        )
    ]


def test_a_feed_s_shape_points_are_not_held_in_memory(tmp_path: Path) -> None:
    """shapes.txt points were grouped in lists per shape before the first shape was built:
    ROWS points of ROWS // 100 shapes, written interleaved (as nothing in GTFS forbids), so
    every shape is open until the file ends. Each shape comes whole, in sequence order."""
    shapes = ROWS // 100
    lines = ["shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence"]
    lines += [f"P{i % shapes},37.{i:06d},127.0,{100 - i // shapes}" for i in range(ROWS)]
    small_feed(tmp_path, shapes=lines)
    source = GtfsSource(tmp_path)
    built: list[Record] = []

    def read() -> None:
        for r in source:
            if r.eid == f"{U}GtfsShape:P7" or r.error is not None:
                built.append(r)

    assert peak(read) < BOUND
    assert [r.error for r in built] == [None]
    assert built[0].where == "shapes.txt line 9"
    line = built[0].entity["location"]["value"]["coordinates"] if built[0].entity else []
    assert len(line) == 100
    assert line[0] == [127.0, 37.0 + (99 * shapes + 7) / 1e6]  # sequence 1: the last row
    assert line[-1] == [127.0, 37.0 + 7 / 1e6]


class Feed:
    """A stored feed of one agency, one route, ROWS // 40 trips and ROWS stop times."""

    def count(self, etype: str, pattern: str | None) -> int:
        return 10**9

    def delete(self, ids: list[str]) -> list[tuple[int, str, str]]:
        self.deleted += len(ids)
        return []

    def __init__(self) -> None:
        self.deleted = 0

    def listing(self, etype: str, links: tuple[str, ...]) -> Iterator[tuple[str, Links]]:
        if etype == "GtfsAgency":
            yield f"{U}GtfsAgency:A", {}
        elif etype == "GtfsRoute":
            yield f"{U}GtfsRoute:R", {"operatedBy": [f"{U}GtfsAgency:A"]}
        elif etype == "GtfsTrip":
            for t in range(ROWS // 40):
                yield f"{U}GtfsTrip:T{t}", {"hasRoute": [f"{U}GtfsRoute:R"]}
        elif etype == "GtfsStopTime":
            for i in range(ROWS):
                trip = f"{U}GtfsTrip:T{i // 40}"
                yield f"{U}GtfsStopTime:T{i // 40}:{i % 40 + 1}", {"hasTrip": [trip]}


def test_a_feed_s_prune_walks_its_entities_outside_memory() -> None:
    """The file dropped trip T0: its stop times hang off it, so they go with it."""
    seen = Seen()
    try:
        for eid in (f"{U}GtfsAgency:A", f"{U}GtfsRoute:R"):
            seen.note(Record("", {"id": eid, "type": eid.split(":")[2]}, eid=eid))
        for t in range(1, ROWS // 40):
            eid = f"{U}GtfsTrip:T{t}"
            seen.note(Record("", {"id": eid, "type": "GtfsTrip"}, eid=eid))
        for i in range(40, ROWS):
            seen.note(stop_time(i))
        feed = Feed()
        scope = FeedScope((f"{U}GtfsAgency:A",), FEED_LINKS)
        out = []
        assert peak(lambda: out.append(settle(feed, seen, scope, prune=True))) < BOUND
        assert out[0].count == 41 and feed.deleted == 41
        assert out[0].named[:2] == [f"{U}GtfsTrip:T0", f"{U}GtfsStopTime:T0:1"]
    finally:
        seen.close()


def test_the_ids_a_feed_s_references_are_checked_against_are_not_held_in_memory() -> None:
    refs = References()
    try:

        def note() -> None:
            for t in range(ROWS):
                eid = f"{U}GtfsTrip:T{t}"
                refs.note(Record(f"trips.txt line {t + 2}", {"id": eid}, eid=eid))

        assert peak(note) < BOUND
        for i, trip in enumerate(("T0", "T0", f"T{ROWS - 1}", "T-gone")):
            entity = {
                "id": f"{U}GtfsStopTime:{trip}:{i}",
                "hasTrip": {"object": f"{U}GtfsTrip:{trip}"},
            }
            refs.note(Record(f"stop_times.txt line {i + 2}", entity, eid=entity["id"]))
        assert refs.lines() == [
            "cityhub import: stop_times.txt: 1 row names a trip_id that trips.txt does not have "
            "(line 5: T-gone): its hasTrip points at no entity"
        ]
    finally:
        refs.close()
