"""Drive one import: records in chunks to a sink, a progress bar, the rejections, a summary."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

from tqdm import tqdm

from cityhub.ingest.importers.prune import Seen
from cityhub.ingest.importers.records import Record, Source
from cityhub.ingest.importers.sinks import Sink
from cityhub.jsondepth import MAX_DEPTH, nests_deeper
from cityhub.ngsild.errors import BadRequestData

SHOWN_ERRORS = 20
# A row's entity goes to the hub inside a batch body (one array level more), and the API
# refuses bodies past MAX_DEPTH: the same bound for --db and --url, and below what orjson
# can write (a row nested 253 levels crashed --db with a traceback).
ROW_DEPTH = MAX_DEPTH - 1
TOO_DEEP = BadRequestData(
    f"the entity nests JSON deeper than {ROW_DEPTH} levels (the hub's bound for a body of "
    f"entities is {MAX_DEPTH})"
)


@dataclass
class Report:
    """The outcome of an import; rejections beyond the first SHOWN_ERRORS are only counted."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0  # already stored as the file has them: nothing written
    rejected: int = 0
    seconds: float = 0.0
    types: Counter[str] = field(default_factory=Counter)  # stored entities per type
    shown: list[str] = field(default_factory=list)
    unshown: int = 0  # rejected rows whose line was not printed
    chunks: int = 0  # chunks handed to the sink, the one it may have failed on included

    @property
    def stored(self) -> int:
        """Entities written (created or updated)."""
        return self.created + self.updated

    @property
    def rate(self) -> float:
        """Entities settled (written, or found stored as they are) per second of wall time."""
        done = self.stored + self.unchanged
        return done / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """The closing lines a user reads: counts, time and rate, then entities per type."""
        head = (
            f"{self.created:,} created, {self.updated:,} updated, {self.unchanged:,} unchanged, "
            f"{self.rejected:,} rejected "
            f"in {self.seconds:.2f} s ({self.rate:,.0f} entities/s)"
        )
        if not self.types:
            return head
        per_type = ", ".join(f"{t} {n:,}" for t, n in sorted(self.types.items()))
        return f"{head}\n  written per type: {per_type}"  # rows: a repeated id counts each time

    def so_far(self, again: bool = True) -> str:
        """What an import that stopped midway had stored: nothing is undone. `again`: whether
        the same import run again can finish (ImportFailed.again), which is said only then."""
        if not self.chunks:
            return "nothing was sent"
        then = (
            "the same import run again finishes it"
            if again
            else "the same import run again stops the same way: change what the line above "
            "names first"
        )
        return (
            f"{self.stored:,} entities were stored before it stopped ({self.created:,} created, "
            f"{self.updated:,} updated; {self.unchanged:,} were already stored); they stay "
            f"stored, as may the chunk that was in flight: {then}"
        )


class _Run:
    """The state of one import while it runs."""

    def __init__(
        self, sink: Sink, bar: tqdm, err: TextIO, report: Report, seen: Seen | None
    ) -> None:
        self.sink = sink
        self.bar = bar
        self.err = err
        self.report = report
        self.seen = seen

    def reject(self, record: Record, title: str, detail: str) -> None:
        """Count a rejection; print it while fewer than SHOWN_ERRORS have been printed."""
        self.report.rejected += record.rows
        if self.seen is not None:
            self.seen.reject(record)
        if len(self.report.shown) >= SHOWN_ERRORS:
            self.report.unshown += record.rows
        else:
            who = f" {record.eid}" if record.eid else ""
            line = f"rejected {record.where}{who}: {title}: {detail}"
            self.report.shown.append(line)
            tqdm.write(line, file=self.err)

    def flush(self, chunk: list[Record]) -> None:
        """Send a chunk and account for every record in it."""
        if not chunk:
            return
        # Only records with an entity are chunked, so indexes in the result index chunk too.
        self.report.chunks += 1
        result = self.sink.send([r.entity for r in chunk if r.entity is not None])
        failed = set()
        for i, title, detail in result.errors:
            failed.add(i)
            self.reject(chunk[i], title, detail)
        self.report.created += result.created
        self.report.updated += result.updated
        self.report.unchanged += len(result.unchanged)
        skipped = failed | set(result.unchanged)
        for i, record in enumerate(chunk):
            if i not in skipped and record.entity is not None:
                self.report.types[str(record.entity.get("type"))] += 1
        self.bar.update(len(chunk))


def run_import(
    source: Source,
    sink: Sink,
    *,
    chunk_size: int = 1000,
    progress: bool = True,
    label: str = "importing",
    err: TextIO | None = None,
    report: Report | None = None,
    seen: Seen | None = None,
) -> Report:
    """Stream source into sink in chunks; one bad record never stops the others.

    ImportFailed from the source or the sink propagates (the caller reports it); `report`,
    when given, holds what was stored until then (Report.so_far); `seen` collects what the
    file named, for a prune.
    """
    err = err or sys.stderr
    start = time.perf_counter()
    with tqdm(
        total=source.estimate() if progress else None,  # counting reads the input once more
        desc=label,
        unit=" entities",
        file=err,
        disable=not progress,
        dynamic_ncols=True,
    ) as bar:
        run = _Run(sink, bar, err, Report() if report is None else report, seen)
        chunk: list[Record] = []
        for record in source:
            if seen is not None:
                seen.note(record)
            if record.error is not None:
                run.reject(record, record.error.title, record.error.detail)
                bar.update(record.rows)
                continue
            if nests_deeper(record.entity, ROW_DEPTH):
                run.reject(record, TOO_DEEP.title, TOO_DEEP.detail)
                bar.update(record.rows)
                continue
            chunk.append(record)
            if len(chunk) >= chunk_size:
                run.flush(chunk)
                chunk = []
        run.flush(chunk)
        bar.total = bar.n  # the estimate may have counted blank or multi-line rows
        bar.refresh()
    run.report.seconds = time.perf_counter() - start
    return run.report
