"""`cityhub import gtfs`: a GTFS feed as Smart Data Models (dataModel.UrbanMobility) entities.

Ids are ``urn:ngsi-ld:<Type>:<GTFS id>`` (stop times: ``<trip_id>:<stop_sequence>``), and
every GTFS reference becomes a Relationship to the entity it names. Attribute names follow
the Smart Data Models GTFS specs; enumerations keep their GTFS codes, as strings where those
specs (and the demo city) use strings, as numbers where they use numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from cityhub.ingest.importers.attrs import geo, point, prop, rel, urn
from cityhub.ingest.importers.gtfsfeed import BadRow, GtfsFeed, Row
from cityhub.ingest.importers.gtfsrefs import References
from cityhub.ingest.importers.ledger import FirstLines, ShapePoints
from cityhub.ingest.importers.records import Entity, Record
from cityhub.ngsild.errors import BadRequestData, NgsiLdError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
IMPORTED = (
    "agency.txt",
    "calendar.txt",
    "calendar_dates.txt",
    "shapes.txt",
    "stops.txt",
    "routes.txt",
    "trips.txt",
    "stop_times.txt",
)
READ = (*IMPORTED, "feed_info.txt")  # feed_info.txt: where the feed comes from (source)
# Each GtfsAgency lists the agencies of the feed it was last imported with (decision 081),
# so a later version of the feed that drops one still knows the dropped one was its own.
FEED_AGENCIES = "feedAgencies"
# How the entities of a feed hang together, for a prune (prune.FeedScope): per type, the
# relationships to what owns it (up to an agency) and to what it uses. An agency is "owned"
# by the agencies it was imported with: one the feed dropped is reached from those it kept.
FEED_LINKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "GtfsAgency": ((FEED_AGENCIES,), ()),
    "GtfsService": (("operatedBy",), ()),
    "GtfsCalendarRule": (("hasService",), ()),
    "GtfsCalendarDateRule": (("hasService",), ()),
    "GtfsShape": ((), ()),
    "GtfsStop": (("operatedBy",), ("hasParentStation",)),
    "GtfsRoute": (("operatedBy",), ()),
    "GtfsTrip": (("hasRoute",), ("hasService", "hasShape")),
    "GtfsStopTime": (("hasTrip",), ("hasStop",)),
}
_TIME = re.compile(r"(\d{1,2}):([0-5]\d):([0-5]\d)")
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")

Builder = Callable[[Row], Entity]


def _text(entity: Entity, name: str, row: Row, column: str) -> None:
    """Copy a GTFS column as a text Property; a blank cell is None (no value, refresh.py)."""
    _copy(entity, name, row, column, row.get(column))


def _number(entity: Entity, name: str, row: Row, column: str, kind: type = int) -> None:
    """Copy a numeric GTFS column (int or float) as a number Property (blank: None)."""
    value = row.get(column)
    _copy(entity, name, row, column, None if value is None else _parse(value, column, kind))


def _copy(entity: Entity, name: str, row: Row, column: str, value: Any) -> None:
    """A column's value as a Property, or None for a blank cell of a column the file has."""
    if value is None:
        _blank(entity, name, row, column)
    else:
        entity[name] = prop(value)


def _blank(entity: Entity, name: str, row: Row, *columns: str) -> None:
    """An attribute with no value is None (deleted on a re-import) only when its table has a
    source column: one the feed does not have may be another client's (decision 028)."""
    if any(c in row.header for c in columns):
        entity[name] = None


def _parse(value: str, column: str, kind: type) -> int | float:
    """A cell as int or float; BadRequestData names the column so the user can find it."""
    try:
        number: int | float = kind(value)
    except ValueError:
        raise BadRequestData(f"{column} {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise BadRequestData(f"{column} {value!r} is not a finite number")
    return number


def _sequence(value: str) -> int:
    """A shape_pt_sequence: a whole number within 64 bits, as the import's ledger keeps it."""
    seq = int(_parse(value, "shape_pt_sequence", int))
    if not -(2**63) <= seq < 2**63:
        raise BadRequestData(f"shape_pt_sequence {value!r} is out of range")
    return seq


def _key(row: Row, column: str) -> str:
    """A required id column of a row; BadRequestData when blank."""
    value = row.get(column)
    if value is None:
        raise BadRequestData(f"{column} is blank")
    return value


def _time(row: Row, column: str) -> str | None:
    """A GTFS time as HH:MM:SS (hours may pass 24 for trips after midnight)."""
    value = row.get(column)
    if value is None:
        return None
    m = _TIME.fullmatch(value)
    if m is None:
        raise BadRequestData(f"{column} {value!r} is not a GTFS time (H:MM:SS)")
    return f"{int(m[1]):02d}:{m[2]}:{m[3]}"


def _date(row: Row, column: str) -> str:
    """A GTFS date (YYYYMMDD) as an ISO 8601 date."""
    value = _key(row, column)
    m = _DATE.fullmatch(value)
    if m is None:
        raise BadRequestData(f"{column} {value!r} is not a GTFS date (YYYYMMDD)")
    try:  # the shape alone let 20241331 through as 2024-13-31
        return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        raise BadRequestData(f"{column} {value!r} is not a calendar date") from None


# table -> (entity type, id column) for naming a row that could not become an entity
_ROW_IDS = {
    "agency.txt": ("GtfsAgency", "agency_id"),
    "calendar.txt": ("GtfsCalendarRule", "service_id"),
    "stops.txt": ("GtfsStop", "stop_id"),
    "routes.txt": ("GtfsRoute", "route_id"),
    "trips.txt": ("GtfsTrip", "trip_id"),
}


def _row_id(table: str, row: Row) -> str:
    """The id a rejected row would have had, when its key columns say ('' otherwise)."""
    if table == "stop_times.txt":
        trip, seq = row.get("trip_id"), row.get("stop_sequence")
        return urn("GtfsStopTime", f"{trip}:{seq}") if trip and seq else ""
    if table == "calendar_dates.txt":
        sid, day = row.get("service_id"), row.get("date")
        return urn("GtfsCalendarDateRule", f"{sid}:{day}") if sid and day else ""
    entity_type, column = _ROW_IDS.get(table, ("", ""))
    key = row.get(column)
    return urn(entity_type, key) if entity_type and key else ""


def agency_key(row: Row) -> str:
    """agency_id, or (single-agency feeds may omit it) a slug of agency_name."""
    if "agency_id" in row:
        return row["agency_id"]
    name = _key(row, "agency_name")
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "agency"


class GtfsSource:
    """Every entity of a feed: agencies, services and calendars, shapes, stops, routes, trips
    and stop times, in that order (referenced entities come before those referring to them)."""

    def __init__(self, path: Path, source: str | None = None) -> None:
        self.feed = GtfsFeed(path)
        # what every agency's source says: given, or the feed's publisher (None: each
        # agency's own agency_url); never the file's name, which changes with each download
        self.source = source or self._publisher()
        self.skipped = [t for t in self.feed.tables() if t not in READ]
        agencies = list(self.feed.rows("agency.txt"))
        self._agency_rows = agencies
        keys = []
        for _line, row in agencies:
            if isinstance(row, BadRow):
                continue
            try:
                keys.append(agency_key(row))
            except BadRequestData:
                continue
        self.agencies = tuple(urn("GtfsAgency", key) for key in keys)
        # Routes (and stops, services) of a single-agency feed belong to that agency.
        self.only_agency = self.agencies[0] if len(keys) == 1 else None
        self._shapes: ShapePoints | None = None  # read once (the estimate counts them)
        self._broken: list[tuple[int, BadRow]] = []  # shapes.txt lines that are not valid CSV
        self._services: list[str] | None = None
        self.references = References()  # what rows refer to that the feed lacks
        self._measured = False  # shapes.txt has a shape_dist_traveled column
        self._lines: FirstLines | None = None  # where each id was first given (_table)

    def estimate(self) -> int | None:
        """Rows of every imported table, shapes counted once per shape."""
        tables = ("calendar.txt", "calendar_dates.txt", "stops.txt", "routes.txt", "trips.txt")
        services = self._service_ids()
        return (
            len(self._agency_rows)
            + len(services)
            + sum(self.feed.count(t) for t in tables)
            + self._grouped_shapes().count()
            + self.feed.count("stop_times.txt")
        )

    def __iter__(self) -> Iterator[Record]:
        """The feed's entities; each row that cannot become one carries its error."""
        try:
            for record in self._records():
                self.references.note(record)
                yield record
        finally:
            self.references.close()

    def _records(self) -> Iterator[Record]:
        """Every table's records, in the order that puts what is referred to first."""
        try:
            for line, row in self._agency_rows:
                yield self._record("agency.txt", line, row, self._agency)
            for sid in self._service_ids():
                where = f"service {sid}"
                yield Record(where, self._service(sid), eid=urn("GtfsService", sid))
            yield from self._table("calendar.txt", ("service_id",), self._calendar_rule)
            yield from self._table(
                "calendar_dates.txt", ("service_id", "date", "exception_type"), self._date_rule
            )
            yield from self._shape_records()
            yield from self._table("stops.txt", ("stop_id",), self._stop)
            yield from self._table("routes.txt", ("route_id", "route_type"), self._route)
            yield from self._table("trips.txt", ("route_id", "service_id", "trip_id"), self._trip)
            yield from self._table(
                "stop_times.txt", ("trip_id", "stop_id", "stop_sequence"), self._stop_time
            )
        finally:
            self.feed.close()
            if self._lines is not None:
                self._lines.close()
                self._lines = None
            if self._shapes is not None:
                self._shapes.close()
                self._shapes = None

    def _firsts(self) -> FirstLines:
        """The line each id was first given on, in a ledger: a feed's ids do not fit in
        memory at a country's scale (decision 092)."""
        if self._lines is None:
            self._lines = FirstLines()
        return self._lines

    # -- plumbing ----------------------------------------------------------------------------
    def _table(self, table: str, required: tuple[str, ...], build: Builder) -> Iterator[Record]:
        """Records of one table; a repeated GTFS id is an error, not a silent overwrite."""
        firsts = self._firsts()
        for line, row in self.feed.rows(table, required):
            if isinstance(row, BadRow):  # names no id for sure: it holds a prune back
                yield Record(f"{table} line {line}", error=row.bad.error, rows=row.bad.rows)
                continue
            record = self._record(table, line, row, build)
            if record.entity is not None:
                first = firsts.first(record.eid, line)
                if first != line:
                    err = BadRequestData(f"the same entity as line {first} (a repeated GTFS id)")
                    record = Record(record.where, error=err, eid=record.eid)
            yield record

    @staticmethod
    def _record(table: str, line: int, row: Row | BadRow, build: Builder) -> Record:
        """Build one row's entity, or keep the error with the row's place and would-be id."""
        where = f"{table} line {line}"
        if isinstance(row, BadRow):
            return Record(where, error=row.bad.error, rows=row.bad.rows)
        try:
            entity = build(row)
        except NgsiLdError as err:
            return Record(where, error=err, eid=_row_id(table, row))
        return Record(where, entity, eid=entity["id"])

    def _service_ids(self) -> list[str]:
        """service_id of calendar.txt and calendar_dates.txt, in order of first appearance
        (read once: the estimate and the import both need them)."""
        if self._services is None:
            ids: dict[str, None] = {}
            for table in ("calendar.txt", "calendar_dates.txt"):
                for _line, row in self.feed.rows(table, ("service_id",)):
                    if not isinstance(row, BadRow):  # rejected when its table is read
                        ids.setdefault(row.get("service_id", ""), None)
            ids.pop("", None)
            self._services = list(ids)
        return self._services

    def _grouped_shapes(self) -> ShapePoints:
        """shapes.txt points by shape_id (a shape is one entity, not one per row), read once
        into a ledger: a large feed's points do not fit in memory (decision 092)."""
        if self._shapes is None:
            self._shapes = shapes = ShapePoints()
            required = ("shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence")
            last = None  # the shape of the row before: a shape's rows mostly come together
            for line, row in self.feed.rows("shapes.txt", required):
                if isinstance(row, BadRow):  # rejected, and so is the shape it seems to be of
                    self._broken.append((line, row))
                    if sid := row.hint.get("shape_id", ""):
                        shapes.first(sid, line)
                        shapes.bad(sid, f"line {line} is not valid CSV")
                    continue
                self._measured = "shape_dist_traveled" in row.header
                sid = row.get("shape_id", "")
                if sid != last:
                    shapes.first(sid, line)
                    last = sid
                try:
                    pt = (
                        _sequence(_key(row, "shape_pt_sequence")),
                        float(_parse(_key(row, "shape_pt_lon"), "shape_pt_lon", float)),
                        float(_parse(_key(row, "shape_pt_lat"), "shape_pt_lat", float)),
                        _parse(row["shape_dist_traveled"], "shape_dist_traveled", float)
                        if "shape_dist_traveled" in row
                        else None,
                    )
                except BadRequestData as err:
                    shapes.bad(sid, f"line {line}: {err.detail}")
                    continue
                shapes.add(sid, pt)
        return self._shapes

    def _shape_records(self) -> Iterator[Record]:
        """One GtfsShape per shape_id, reported at the line of its first point (after the
        lines that were not valid CSV, which may have been any shape's)."""
        shapes = self._grouped_shapes()
        for line, broken in self._broken:
            yield Record(f"shapes.txt line {line}", error=broken.bad.error, rows=broken.bad.rows)
        for sid, first, bad, points in shapes.shapes():
            where = f"shapes.txt line {first}"
            eid = urn("GtfsShape", sid) if sid else ""
            try:
                if not sid:
                    raise BadRequestData("shape_id is blank")
                if bad is not None:
                    raise BadRequestData(f"shape {sid!r} has a bad point ({bad})")
                yield Record(where, self._shape(eid, points, self._measured), eid=eid)
            except NgsiLdError as err:
                yield Record(where, error=err, eid=eid)

    # -- one builder per GTFS table ----------------------------------------------------------
    def _agency(self, row: Row) -> Entity:
        """agency.txt: agencyName as in the demo city, name as SDM requires, source where the
        feed comes from (a URL, as SDM defines it)."""
        e: Entity = {"id": urn("GtfsAgency", agency_key(row)), "type": "GtfsAgency"}
        _text(e, "agencyName", row, "agency_name")
        _text(e, "name", row, "agency_name")
        _text(e, "page", row, "agency_url")
        _text(e, "timezone", row, "agency_timezone")
        _text(e, "language", row, "agency_lang")
        _text(e, "phone", row, "agency_phone")
        _copy(e, "source", row, "agency_url", self.source or row.get("agency_url"))
        e[FEED_AGENCIES] = prop(list(self.agencies))
        return e

    def _publisher(self) -> str | None:
        """feed_info.txt's feed_publisher_url (its first row), if the feed has one."""
        for _line, row in self.feed.rows("feed_info.txt"):
            if not isinstance(row, BadRow):
                return row.get("feed_publisher_url")
        return None

    def _service(self, sid: str) -> Entity:
        """A GtfsService, so every trip's hasService resolves (GTFS has no services table)."""
        e: Entity = {"id": urn("GtfsService", sid), "type": "GtfsService", "name": prop(sid)}
        if self.only_agency:  # several agencies: no column says which, so nothing is deleted
            e["operatedBy"] = rel(self.only_agency)
        return e

    def _calendar_rule(self, row: Row) -> Entity:
        """calendar.txt: the weekly pattern of a service as a GtfsCalendarRule."""
        sid = _key(row, "service_id")
        e: Entity = {"id": urn("GtfsCalendarRule", sid), "type": "GtfsCalendarRule"}
        e["hasService"] = rel(urn("GtfsService", sid))
        for day in WEEKDAYS:
            flag = row.get(day, "0")
            if flag not in ("0", "1"):
                raise BadRequestData(f"{day} must be 0 or 1, got {flag!r}")
            e[day] = prop(flag == "1")
        e["startDate"] = prop(_date(row, "start_date"))
        e["endDate"] = prop(_date(row, "end_date"))
        return e

    def _date_rule(self, row: Row) -> Entity:
        """calendar_dates.txt: one added (1) or removed (2) day of a service."""
        sid = _key(row, "service_id")
        day = _date(row, "date")
        e: Entity = {
            "id": urn("GtfsCalendarDateRule", f"{sid}:{row['date']}"),
            "type": "GtfsCalendarDateRule",
            "hasService": rel(urn("GtfsService", sid)),
            "appliesOn": prop(day),
        }
        _text(e, "exceptionType", row, "exception_type")
        return e

    @staticmethod
    def _shape(
        eid: str, points: list[tuple[int, float, float, float | None]], measured: bool
    ) -> Entity:
        """shapes.txt points in sequence order as a LineString location."""
        points.sort(key=lambda p: p[0])
        if len(points) < 2:
            raise BadRequestData("a shape needs at least two points to be a LineString")
        line = {"type": "LineString", "coordinates": [[p[1], p[2]] for p in points]}
        e: Entity = {"id": eid, "type": "GtfsShape", "location": geo(line)}
        distances = [p[3] for p in points]
        if measured:  # a blank distance: None; no such column: nothing is deleted
            e["distanceTravelled"] = None
        if all(d is not None for d in distances):
            e["distanceTravelled"] = prop(distances)
        return e

    def _stop(self, row: Row) -> Entity:
        """stops.txt: stops, stations and entrances alike (locationType tells them apart)."""
        e: Entity = {"id": urn("GtfsStop", _key(row, "stop_id")), "type": "GtfsStop"}
        _text(e, "name", row, "stop_name")
        _text(e, "code", row, "stop_code")
        _text(e, "description", row, "stop_desc")
        _text(e, "zoneCode", row, "zone_id")
        _text(e, "page", row, "stop_url")
        _text(e, "locationType", row, "location_type")
        _text(e, "wheelChairAccessible", row, "wheelchair_boarding")
        lat, lon = row.get("stop_lat"), row.get("stop_lon")
        _blank(e, "location", row, "stop_lat", "stop_lon")
        if lat is not None or lon is not None:
            if lat is None or lon is None:
                raise BadRequestData("stop_lat and stop_lon go together")
            lon_f = float(_parse(lon, "stop_lon", float))
            lat_f = float(_parse(lat, "stop_lat", float))
            if abs(lat_f) > 90 or abs(lon_f) > 180:
                raise BadRequestData(f"stop_lat/stop_lon {lat}, {lon} are not WGS84 degrees")
            e["location"] = geo(point(lon_f, lat_f))
        _blank(e, "hasParentStation", row, "parent_station")
        if "parent_station" in row:
            e["hasParentStation"] = rel(urn("GtfsStop", row["parent_station"]))
        if self.only_agency:  # several agencies: no column says which, so nothing is deleted
            e["operatedBy"] = rel(self.only_agency)
        return e

    def _route(self, row: Row) -> Entity:
        """routes.txt: operatedBy names agency_id, or the only agency when it is omitted."""
        e: Entity = {"id": urn("GtfsRoute", _key(row, "route_id")), "type": "GtfsRoute"}
        _text(e, "shortName", row, "route_short_name")
        _text(e, "name", row, "route_long_name")
        if e.get("name") is None and e.get("shortName") is not None:
            e["name"] = prop(e["shortName"]["value"])  # GTFS needs one name; SDM wants `name`
        _text(e, "description", row, "route_desc")
        _text(e, "routeType", row, "route_type")
        _text(e, "page", row, "route_url")
        _text(e, "routeColor", row, "route_color")
        _text(e, "routeTextColor", row, "route_text_color")
        _number(e, "routeSortOrder", row, "route_sort_order")
        _blank(e, "operatedBy", row, "agency_id")
        if self.only_agency:
            e["operatedBy"] = rel(self.only_agency)
        if "agency_id" in row:
            e["operatedBy"] = rel(urn("GtfsAgency", row["agency_id"]))
        return e

    @staticmethod
    def _trip(row: Row) -> Entity:
        """trips.txt: a trip with its route, service and shape as Relationships."""
        e: Entity = {"id": urn("GtfsTrip", _key(row, "trip_id")), "type": "GtfsTrip"}
        e["hasRoute"] = rel(urn("GtfsRoute", _key(row, "route_id")))
        e["hasService"] = rel(urn("GtfsService", _key(row, "service_id")))
        _text(e, "headSign", row, "trip_headsign")
        _text(e, "shortName", row, "trip_short_name")
        _number(e, "direction", row, "direction_id")
        _text(e, "block", row, "block_id")
        _blank(e, "hasShape", row, "shape_id")
        if "shape_id" in row:
            e["hasShape"] = rel(urn("GtfsShape", row["shape_id"]))
        _number(e, "wheelChairAccessible", row, "wheelchair_accessible")
        _number(e, "bikesAllowed", row, "bikes_allowed")
        return e

    @staticmethod
    def _stop_time(row: Row) -> Entity:
        """stop_times.txt: times padded to HH:MM:SS, as the SDM pattern wants."""
        trip = _key(row, "trip_id")
        seq = int(_parse(_key(row, "stop_sequence"), "stop_sequence", int))
        if seq < 0:
            raise BadRequestData(f"stop_sequence {seq} is negative")
        e: Entity = {"id": urn("GtfsStopTime", f"{trip}:{seq}"), "type": "GtfsStopTime"}
        e["hasTrip"] = rel(urn("GtfsTrip", trip))
        e["hasStop"] = rel(urn("GtfsStop", _key(row, "stop_id")))
        e["stopSequence"] = prop(seq)
        for name, column in (("arrivalTime", "arrival_time"), ("departureTime", "departure_time")):
            _copy(e, name, row, column, _time(row, column))
        _text(e, "stopHeadsign", row, "stop_headsign")
        _text(e, "pickupType", row, "pickup_type")
        _text(e, "dropOffType", row, "drop_off_type")
        _text(e, "timepoint", row, "timepoint")
        _number(e, "distanceTravelled", row, "shape_dist_traveled", float)
        return e
