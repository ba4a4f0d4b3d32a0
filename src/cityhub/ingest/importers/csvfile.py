"""`cityhub import csv`: one entity per row, columns as Properties, lat/lon as location."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cityhub.ingest.importers.attrs import attribute_name, entity_id, geo, point, prop, scalar
from cityhub.ingest.importers.csvrows import BadLine, read_rows
from cityhub.ingest.importers.records import ROW_TIME, Entity, ImportFailed, Record
from cityhub.ingest.importers.textfile import check_encoding, count_lines, utf8_lines
from cityhub.ngsild.entity import check_name
from cityhub.ngsild.errors import BadRequestData, NgsiLdError
from cityhub.ngsild.timeutil import parse_ts

GEO_NAMES = frozenset({"location", "observationSpace", "operationSpace"})
_SPACED = re.compile(r"(\d{4}-\d{2}-\d{2}) +(\d{1,2}:\d{2}.*)")
_SLASHED = re.compile(r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}")


@dataclass(frozen=True)
class CsvOptions:
    """How to read the file: which columns hold the id, the position and the time."""

    entity_type: str
    id_column: str = "id"
    id_prefix: str | None = None  # default urn:ngsi-ld:<type>:
    lat: str | None = None
    lon: str | None = None
    delimiter: str = ","
    observed_at: str | None = None
    encoding: str = "utf-8"


class CsvSource:
    """The rows of a CSV file as entities of one type."""

    def __init__(self, path: Path, options: CsvOptions) -> None:
        self.path = path
        self.options = options
        self.prefix = options.id_prefix or f"urn:ngsi-ld:{options.entity_type}:"
        try:
            check_name(options.entity_type, "entity type")
        except BadRequestData as exc:
            raise ImportFailed(f"--type: {exc.detail}") from exc
        if len(options.delimiter) != 1:
            raise ImportFailed(f"--delimiter must be one character, got {options.delimiter!r}")
        if (options.lat is None) != (options.lon is None):
            raise ImportFailed("--lat and --lon go together: give both or neither")
        encoding = check_encoding(options.encoding)
        try:
            self._stream = path.open("rb")
        except OSError as exc:
            raise ImportFailed(f"cannot read {path}: {exc.strerror or exc}") from exc
        lines = utf8_lines(self._stream, str(path), encoding)
        # strict: a quote left open is an error on its row, not the rest of the file in one cell
        self._rows = read_rows(lines, options.delimiter)
        _line, header = next(self._rows, (1, []))
        if isinstance(header, BadLine):
            self._stream.close()
            raise ImportFailed(f"{path}: cannot read the header: {header.error.detail}")
        if not header:
            self._stream.close()
            raise ImportFailed(f"{path} is empty: a CSV file needs a header row")
        self.header = [h.strip() for h in header]
        self._index = {h: i for i, h in enumerate(self.header)}
        try:
            self.columns = self._plan()
        except ImportFailed:
            self._stream.close()
            raise

    def _plan(self) -> list[tuple[int, str]]:
        """(column index, attribute name) of every data column; refuses an unusable header."""
        opts = self.options
        seen: set[str] = set()
        for h in self.header:
            if h in seen:
                raise ImportFailed(f"{self.path}: column {h!r} appears twice in the header")
            seen.add(h)
        special = {opts.id_column: "--id-column"}
        if opts.lat is not None and opts.lon is not None:
            special |= {opts.lat: "--lat", opts.lon: "--lon"}
        if opts.observed_at is not None:
            special[opts.observed_at] = "--observed-at"
        for column, flag in special.items():
            if column not in seen:
                raise ImportFailed(
                    f"{self.path}: no column {column!r} ({flag}); the header has: "
                    + ", ".join(self.header)
                    + self._other_delimiter()
                )
        names: dict[str, str] = {}
        if opts.lat is not None:
            names["location"] = f"--lat/--lon ({opts.lat}, {opts.lon})"
        columns: list[tuple[int, str]] = []
        for i, h in enumerate(self.header):
            if h in special:
                continue
            try:
                name = attribute_name(h)
            except ValueError as exc:
                raise ImportFailed(
                    f"{self.path}: column {h!r} cannot be an attribute name: {exc}"
                ) from exc
            if name in GEO_NAMES:
                raise ImportFailed(
                    f"{self.path}: column {h!r} cannot be an attribute: NGSI-LD keeps {name!r} "
                    "for a GeoProperty (--lat and --lon make the location)"
                )
            if name in names:
                raise ImportFailed(
                    f"{self.path}: column {h!r} becomes attribute {name!r}, "
                    f"which {names[name]} already gives"
                )
            names[name] = f"column {h!r}"
            columns.append((i, name))
        return columns

    def _other_delimiter(self) -> str:
        """A hint when the header read as one column holds another usual delimiter."""
        if len(self.header) != 1:
            return ""
        for other, flag in ((";", "';'"), ("\t", "tab"), ("|", "'|'"), (",", "','")):
            if other != self.options.delimiter and other in self.header[0]:
                shown = "tabs" if other == "\t" else repr(other)
                return (
                    f" (the header reads as one column: are its cells separated by {shown}? "
                    f"Give --delimiter {flag})"
                )
        return ""

    def renamed(self) -> list[tuple[str, str]]:
        """Headers that had to change to become attribute names (worth telling the user)."""
        return [(self.header[i], name) for i, name in self.columns if self.header[i] != name]

    def estimate(self) -> int | None:
        """Lines after the header (an upper bound when cells hold line breaks)."""
        with self.path.open("rb") as f:
            return max(count_lines(f) - 1, 0)

    def __iter__(self) -> Iterator[Record]:
        """One record per row; a row that cannot be parsed or become an entity carries its error."""
        try:
            for line, row in self._rows:
                if isinstance(row, BadLine):
                    yield Record(f"line {line}", error=row.error, rows=row.rows)
                elif any(cell.strip() for cell in row):
                    yield self._record(row, f"line {line}")
        finally:
            self._stream.close()

    def _cell(self, row: list[str], column: str) -> str:
        """A named cell, stripped; "" past a short row's end (its id, when it is refused)."""
        i = self._index[column]
        return row[i].strip() if i < len(row) else ""

    def _record(self, row: list[str], where: str) -> Record:
        """The row's entity, or the reason it has none (with its id when it has one)."""
        opts = self.options
        raw_id = self._cell(row, opts.id_column)
        eid = entity_id(raw_id, self.prefix) if raw_id else ""
        try:
            if len(row) > len(self.header):
                raise BadRequestData(
                    f"the row has {len(row)} cells but the header names {len(self.header)}"
                )
            if len(row) < len(self.header):  # read as empty cells, they deleted stored values
                raise BadRequestData(
                    f"the row has {len(row)} cells but the header names {len(self.header)}: "
                    "a line cut short? Write every cell, an empty one as nothing between two "
                    f"{_shown(self.options.delimiter)}"
                )
            if not raw_id:
                raise BadRequestData(f"no entity id: column {opts.id_column!r} is empty")
            return Record(where, self._entity(row, eid), eid=eid)
        except NgsiLdError as err:
            return Record(where, error=err, eid=eid)

    def _entity(self, row: list[str], eid: str) -> Entity:
        """Cells as Properties (numbers typed; an empty one None), lat/lon as location."""
        opts = self.options
        observed = self._cell(row, opts.observed_at) if opts.observed_at else ""
        at = observed or None
        if at is not None:  # checked here so the error names the column, not an attribute
            _observed(at, f"column {opts.observed_at!r} (--observed-at)")
        entity: Entity = {"id": eid, "type": opts.entity_type}
        if at is not None:
            entity[ROW_TIME] = at  # an empty cell then deletes nothing observed later
        for i, name in self.columns:
            text = row[i].strip()
            entity[name] = prop(scalar(text), at) if text else None  # None: no value (refresh.py)
        if opts.lat is not None and opts.lon is not None:
            lat, lon = self._cell(row, opts.lat), self._cell(row, opts.lon)
            entity["location"] = None
            if lat or lon:
                if not (lat and lon):
                    empty = "latitude" if not lat else "longitude"
                    raise BadRequestData(
                        f"{empty} is empty: give both --lat and --lon cells, or neither"
                    )
                entity["location"] = geo(
                    point(_degrees(lon, "longitude", 180), _degrees(lat, "latitude", 90)), at
                )
        return entity


def _observed(text: str, what: str) -> None:
    """An --observed-at cell must be an ISO 8601 DateTime; the error shows how to write the
    forms spreadsheets and databases export (a space for the T, day/month/year)."""
    try:
        parse_ts(text, what)
    except BadRequestData as exc:
        if m := _SPACED.fullmatch(text):
            hint = f"put a T between the date and the time: {m[1]}T{m[2]}"
        elif _SLASHED.match(text):
            hint = "ISO 8601 is year-month-day, e.g. 2024-03-01T11:00:00Z"
        else:
            raise
        raise BadRequestData(
            f"{exc.detail} ({hint}; a time without Z or an offset is UTC)"
        ) from None


def _degrees(text: str, what: str, limit: float) -> float:
    """A coordinate cell as a float within ±limit; BadRequestData otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise BadRequestData(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > limit:
        raise BadRequestData(f"{what} {text!r} is outside ±{limit:g}")
    return value


def _shown(delimiter: str) -> str:
    """A delimiter as a user reads it in a message."""
    return "tabs" if delimiter == "\t" else f"{delimiter!r}s"
