"""The `cityhub import` sub-command: its arguments, and the one place its errors become exit codes.

Exit codes: 0 everything stored, 1 some rows rejected (the others are stored), 2 a bad command
line, an unreadable file, or a database or hub that cannot be used; 130 stopped by Ctrl-C or
SIGTERM (a prune after the slice it was deleting).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cityhub.ingest.importers.records import ImportFailed
from cityhub.masked_url import masked
from cityhub.ngsild.tenant import tenant_option

if TYPE_CHECKING:
    from cityhub.ingest.importers.prune import Scope
    from cityhub.ingest.importers.records import Source
    from cityhub.ingest.importers.sinks import Sink

DEFAULT_CHUNK = 1000


def _chunk_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError("must be between 1 and 100000")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    """Options every format shares: where the entities go and how."""
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--db",
        default=None,
        help="SQLite database to write into directly (default ./cityhub.db, CITYHUB_DB)",
    )
    target.add_argument(
        "--url",
        default=None,
        help="a running hub, e.g. http://127.0.0.1:1026: entities are upserted through its "
        "API, so its subscribers are notified",
    )
    p.add_argument(
        "--tenant", default="", type=tenant_option, help="NGSILD-Tenant to write to (default: none)"
    )
    p.add_argument(
        "--context",
        default=None,
        metavar="URL",
        help="@context the attribute and type names are in (default: the NGSI-LD core context)",
    )
    p.add_argument(
        "--chunk-size",
        type=_chunk_size,
        default=DEFAULT_CHUNK,
        help=f"entities per batch upsert, 1 to 100000 (default {DEFAULT_CHUNK})",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--replace",
        action="store_true",
        help="the file is the whole truth of each entity in it: attributes it does not give "
        "are deleted (default: only those it gives empty)",
    )
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete the stored entities of the file's types (a GTFS feed: of its agencies) "
        "that the file no longer gives (default: they are only listed)",
    )


def add_parser(subparsers: Any) -> None:
    """Register `cityhub import csv|geojson|gtfs` on the top-level sub-parsers."""
    imp = subparsers.add_parser(
        "import",
        help="load a CSV, GeoJSON or GTFS file as NGSI-LD entities",
        description="Load a file as NGSI-LD entities, validated like API input. Exit code 0: "
        "all stored; 1: some rows rejected (the rest stored); 2: bad arguments, a file that "
        "cannot be read, or a database or hub that cannot be used (an import stopped midway "
        "says what it had stored); 130: stopped by Ctrl-C or SIGTERM.",
    )
    kinds = imp.add_subparsers(dest="format", required=True, metavar="{csv,geojson,gtfs}")

    csv_p = kinds.add_parser("csv", help="one entity per row of a CSV file")
    csv_p.add_argument("file", type=Path, help="the CSV file, with a header row")
    csv_p.add_argument("--type", required=True, dest="entity_type", help="entity type")
    csv_p.add_argument("--id-column", default="id", help="column holding the id (default id)")
    _id_prefix(csv_p)
    csv_p.add_argument("--lat", default=None, metavar="COL", help="latitude column (WGS84)")
    csv_p.add_argument("--lon", default=None, metavar="COL", help="longitude column (WGS84)")
    csv_p.add_argument(
        "--delimiter", default=",", help="cell separator, one character; 'tab' for tabs (default ,)"
    )
    csv_p.add_argument(
        "--observed-at", default=None, metavar="COL", help="column with each row's observedAt"
    )
    csv_p.add_argument(
        "--encoding",
        default="utf-8",
        help="the file's text encoding (default utf-8; e.g. cp949 or euc-kr for files from "
        "Korean public-data portals)",
    )
    _common(csv_p)

    geo_p = kinds.add_parser("geojson", help="one entity per Feature of a GeoJSON file")
    geo_p.add_argument("file", type=Path, help="a FeatureCollection or a single Feature")
    geo_p.add_argument(
        "--type", default=None, dest="entity_type", help="entity type (default: properties.type)"
    )
    _id_prefix(geo_p)
    _common(geo_p)

    gtfs_p = kinds.add_parser(
        "gtfs", help="a GTFS feed as Smart Data Models GtfsAgency, GtfsStop, ... entities"
    )
    gtfs_p.add_argument("file", type=Path, help="the GTFS zip file, or a folder of .txt files")
    gtfs_p.add_argument(
        "--source",
        default=None,
        metavar="URL",
        help="where the feed comes from, each GtfsAgency's source (default: feed_info.txt's "
        "feed_publisher_url, else the agency's agency_url)",
    )
    _common(gtfs_p)


def _id_prefix(parser: argparse.ArgumentParser) -> None:
    """--id-prefix, for the formats whose ids may not be URIs."""
    parser.add_argument(
        "--id-prefix",
        default=None,
        type=_prefix,
        help="put before ids that are not URIs (default urn:ngsi-ld:TYPE:)",
    )


def _prefix(text: str) -> str:
    """--id-prefix: an empty one was taken for "not given" and the default used."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty (ids that are URIs get no prefix)")
    return text


def _source(args: argparse.Namespace) -> Source:
    """Open the file for its format; ImportFailed when it cannot be read as one."""
    if args.format == "csv":
        from cityhub.ingest.importers.csvfile import CsvOptions, CsvSource

        delimiter = "\t" if args.delimiter in ("tab", "\\t") else args.delimiter
        options = CsvOptions(
            entity_type=args.entity_type,
            id_column=args.id_column,
            id_prefix=args.id_prefix,
            lat=args.lat,
            lon=args.lon,
            delimiter=delimiter,
            observed_at=args.observed_at,
            encoding=args.encoding,
        )
        source = CsvSource(args.file, options)
        for header, name in source.renamed():
            print(f"cityhub import: column {header!r} becomes attribute {name!r}", file=sys.stderr)
        return source
    if args.format == "geojson":
        from cityhub.ingest.importers.geojsonfile import GeoJsonSource

        geojson = GeoJsonSource(args.file, args.entity_type, args.id_prefix)
        for key, name in geojson.renamed():
            print(f"cityhub import: property {key!r} becomes attribute {name!r}", file=sys.stderr)
        return geojson
    from cityhub.ingest.importers.gtfs import GtfsSource

    feed = GtfsSource(args.file, args.source)
    if feed.skipped:
        print(f"cityhub import: not imported: {', '.join(feed.skipped)}", file=sys.stderr)
    return feed


def _dangling(source: Source) -> list[str]:
    """A GTFS feed's references to rows it does not have (gtfsrefs.py), one line each."""
    from cityhub.ingest.importers.gtfs import GtfsSource

    return source.references.lines() if isinstance(source, GtfsSource) else []


def _scope(args: argparse.Namespace, source: Source) -> Scope:
    """Which stored entities the file answers for (prune.py)."""
    from cityhub.ingest.importers.gtfs import FEED_LINKS, GtfsSource
    from cityhub.ingest.importers.prune import FeedScope, TypeScope

    if isinstance(source, GtfsSource):
        return FeedScope(source.agencies, FEED_LINKS)
    return TypeScope(args.id_prefix)


def run(args: argparse.Namespace) -> int:
    """Run `cityhub import ...`; returns the exit code (errors never end in a traceback)."""
    from cityhub.cli import load_settings
    from cityhub.ingest.importers.importlock import one_import
    from cityhub.ingest.importers.prune import Pruning, Seen, settle
    from cityhub.ingest.importers.runner import Report, run_import
    from cityhub.ingest.importers.sinks import DbSink, HttpSink, term_map
    from cityhub.ingest.importers.stopping import terminate_as_interrupt

    settings = load_settings(**({"db": args.db} if args.db else {}))
    if settings is None:  # load_settings named each bad one
        return 2
    report = Report()  # filled as chunks are stored: what a stopped import had done
    seen = Seen()
    pruning = Pruning()
    try:
        source = _source(args)
        tm = term_map(args.context, settings)
        sink: Sink
        with contextlib.ExitStack() as held:  # closed in turn: sink, ids, the import lock
            held.enter_context(terminate_as_interrupt())
            if args.url:
                held.callback(seen.close)
                sink = HttpSink(
                    args.url,
                    args.tenant,
                    tm,
                    args.context,
                    replace=args.replace,
                    max_body=settings.max_body,
                )
            else:
                held.enter_context(one_import(settings.db))
                held.callback(seen.close)
                sink = DbSink(
                    settings.db,
                    args.tenant,
                    tm,
                    replace=args.replace,
                    max_entity_bytes=settings.max_entity_bytes,
                )
            held.callback(sink.close)
            report = run_import(
                source,
                sink,
                chunk_size=args.chunk_size,
                progress=not args.no_progress,
                label=f"import {args.format} {args.file.name}",
                report=report,
                seen=seen,
            )
            for line in _dangling(source):
                print(line, file=sys.stderr)
            scope = _scope(args, source)
            pruning = settle(sink, seen, scope, args.prune, not args.no_progress, sys.stderr)
    except ImportFailed as exc:
        print(f"cityhub import: {masked(str(exc))}", file=sys.stderr)
        if report.chunks:  # it stopped midway (a hub lost, a database failing, a bad row)
            print(f"cityhub import: {report.so_far(exc.again)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cityhub import: interrupted; {report.so_far()}", file=sys.stderr)
        return 130
    if pruning.stopped:
        print(f"cityhub import: {pruning.stop_line()}", file=sys.stderr)
    if report.unshown:
        print(
            f"cityhub import: {report.unshown:,} more rejections not shown",
            file=sys.stderr,
        )
    target = masked(args.url) if args.url else settings.db
    print(f"cityhub import {args.format} {args.file} -> {target}: {report.summary()}")
    for line in pruning.lines():
        print(line)
    if pruning.stopped:
        return 130
    return 1 if report.rejected or pruning.refused else 0
