"""SqliteStore: one writer connection behind a lock, a read connection per thread."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from cityhub.ngsild.entity_bytes import DEFAULT_MAX_ENTITY_BYTES, EntityTooLarge, check_size
from cityhub.ngsild.errors import Conflict, NgsiLdError
from cityhub.ngsild.query import ast
from cityhub.ngsild.timeutil import now_iso
from cityhub.store import reads
from cityhub.store.base import (
    Aggregation,
    Change,
    ChangeSink,
    Doc,
    EntityExists,
    EntityQuery,
    Erasure,
    HistoryEntry,
    OutboxHeads,
    OutboxItem,
    StoreError,
    StoreFull,
    StoreLost,
    TemporalQuery,
    WriteGuard,
)
from cityhub.store.reads import ReadLimit
from cityhub.store.sqlite import (
    deletions,
    erasures,
    functions,
    outbox,
    resources,
    temporal,
    typestats,
)
from cityhub.store.sqlite.binding import bind_none_cheaply
from cityhub.store.sqlite.bulk import insert_rows
from cityhub.store.sqlite.busy import begin_immediate
from cityhub.store.sqlite.file_watch import FileWatch
from cityhub.store.sqlite.files import read_write, refuse_foreign
from cityhub.store.sqlite.index import attr_keys, geo_rows
from cityhub.store.sqlite.names import Assigned, AttrNames
from cityhub.store.sqlite.no_room import no_room
from cityhub.store.sqlite.qsql import Compiler, id_bound
from cityhub.store.sqlite.schema import (
    BEFORE_MIGRATION,
    DDL,
    MIGRATIONS,
    PRAGMAS,
    SCHEMA_VERSION,
)
from cityhub.store.sqlite.typesets import TypeSets
from cityhub.throttled_log import ThrottledLog

log = logging.getLogger("cityhub.store")
CHECKPOINT_EVERY = 0.5  # seconds
# Past this many WAL frames (16 MiB of 4 KiB pages) the checkpointer makes the WAL restart.
WAL_RESTART_FRAMES = 4096
# WAL frames a checkpoint could not copy (64 MiB of 4 KiB pages, journal_size_limit's worth)
# past which a reader's old snapshot is holding the WAL back (/health, checkpoint_starved)
STARVED_FRAMES = 16_384
# A count over a pk span this wide runs as two halves, the second on a reader thread: SQLite
# releases the GIL while it counts, so a 2-core machine counts in about half the time.
SPLIT_SPAN = 10_000
# A data_version no connection reports (they start at 1): the split count's other half is
# counted again on this snapshot, as when some connection committed meanwhile.
NEVER = -1
# The pk span a count walks, each end by its own subquery: SQLite seeks a lone min() or max()
# in an index, but `SELECT min(pk), max(pk)` read every row (2 ms for the 20,000 entities of
# a type, 7 ms for all 100,000, before each split count).
TYPE_SPAN = (
    "SELECT (SELECT min(pk) FROM entity_types WHERE tenant = ?1 AND type = ?2), "
    "(SELECT max(pk) FROM entity_types WHERE tenant = ?1 AND type = ?2)"
)
ALL_SPAN = "SELECT (SELECT min(pk) FROM entities), (SELECT max(pk) FROM entities)"
# How often (in SQLite VM steps) a bounded read checks its deadline: about every 0.1 ms.
PROGRESS_STEPS = 10_000
# The writer's PRAGMA synchronous per `sync` setting. NORMAL syncs the WAL only when the
# checkpointer copies it back (every CHECKPOINT_EVERY s); FULL syncs it at every COMMIT.
SYNC_MODES = {"normal": "NORMAL", "full": "FULL"}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class SqliteStore:
    """The embedded default store (WAL: one writer, concurrent readers)."""

    driver_error: type[Exception] = sqlite3.DatabaseError  # what its driver raises, untyped

    def __init__(
        self,
        path: str | Path,
        *,
        sync: str = "normal",
        query_timeout: float = 0.0,
        max_entity_bytes: int = DEFAULT_MAX_ENTITY_BYTES,
    ) -> None:
        if sync not in SYNC_MODES:
            raise StoreError(f"sync must be one of {', '.join(SYNC_MODES)}, not {sync!r}")
        bind_none_cheaply()
        self.path = str(path)
        self.query_timeout = query_timeout  # seconds a query may read (0: no limit)
        self.max_entity_bytes = max_entity_bytes  # JSON bytes of one entity (0: no bound)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._in_group = False  # guarded by _write_lock
        self._savepoints = True  # inside group(): each write() in its own savepoint
        self.names = AttrNames()
        self.type_sets = TypeSets()
        refuse_foreign(self.path)
        self._writer = self._connect(self.path)  # the one connection that may create the file
        self._watch = FileWatch(self.path)
        self._uri = read_write(Path(self.path))  # every other connection: never an empty one
        self._writer.execute(f"PRAGMA synchronous={SYNC_MODES[sync]}")
        self._check_schema()
        self._create_schema()
        self.sink: ChangeSink | None = None  # notify/ sets it: changes become outbox items
        self.guard: WriteGuard | None = None  # api/ sets it: exclusively registered attributes
        self._group_items: list[OutboxItem] = []  # items of a group, handed over after COMMIT
        # outbox seqs a group's erasures took back, told to the sink after COMMIT
        self._group_withdrawn: list[int] = []
        # what outbox_read_for_erasure found, by (tenant, entity id), until its erasure writes
        self._outbox_read: dict[tuple[str, str], tuple[list[int], int]] = {}
        # epoch seconds of the last write refused for a full disk, until a write() commits
        self._refused_at: float | None = None
        self._refused_cause = ""  # the limit that refused it, '' for a full disk (no_room.py)
        # an entity or history was deleted: the checkpointer empties the WAL, whose old
        # frames still hold what was deleted (scrub)
        self._scrub_wanted = False
        self._group_wrote = False  # a write() block ran in the open group
        self._all_readers: list[sqlite3.Connection] = []
        # a connection that only reads PRAGMA data_version: whether any other connection
        # (the writer, another process) committed meanwhile (a split count checks it); opened
        # now, while the file is surely there
        self._versions = sqlite3.connect(
            self._uri, uri=True, check_same_thread=False, isolation_level=None
        )
        self._versions_lock = threading.Lock()
        self._all_readers.append(self._versions)
        # the second half of split counts (its thread starts on first use)
        self._counter = ThreadPoolExecutor(1, thread_name_prefix="cityhub-count")
        # Checkpoints run on their own thread, not inside a writer's COMMIT (docs/decisions/006).
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._stop = threading.Event()
        self._checkpoint_log = ThrottledLog(log)
        # (epoch seconds of the first, the last error) while checkpoints fail (/health)
        self._checkpoint_failed: tuple[float, str] | None = None
        # (epoch seconds since when, frames) while a checkpoint leaves STARVED_FRAMES or more
        # uncopied: a reader's old snapshot holds them, and the WAL grows with every write
        self._starved: tuple[float, int] | None = None
        # opened here: the file may be gone by the time the thread runs
        conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False, isolation_level=None)
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, args=(conn,), name="cityhub-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpoint_loop(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL back into the database every CHECKPOINT_EVERY seconds; first look
        whether the file is still the one opened (file_watch.py)."""
        conn.execute("PRAGMA busy_timeout=5000")
        try:
            while not self._stop.wait(CHECKPOINT_EVERY):
                if self._watch.look():
                    self._watch.save(self._writer, self._write_lock)
                try:
                    self.checkpoint(conn)
                    if self._scrub_wanted:
                        self.scrub(conn)
                except sqlite3.Error as exc:  # retried at the next tick
                    # a full disk fails every tick: one line per 10 s, not two a second
                    room = no_room(exc)
                    error = room[0] if room else str(exc)
                    self._checkpoint_log.warning("checkpoint failed: %s", error)
                    first = self._checkpoint_failed
                    self._checkpoint_failed = (first[0] if first else time.time(), error)
                else:
                    self._checkpoint_failed = None
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, float]:
        """One PASSIVE checkpoint (it never blocks the writer or readers); then, if the WAL
        is longer than WAL_RESTART_FRAMES, catch up with writes held off. Returns the WAL's
        frames and the seconds writes were held.

        SQLite starts the WAL from its beginning only at a write that finds every frame copied.
        Under a steady write load the writer always appends a little while a checkpoint runs,
        so that never happened and the WAL grew without bound (644 MB in 12 s of creates), and
        every page look-up searched a longer WAL index. A second PASSIVE copies what came in
        during the first; a third, under the write lock, copies the last few frames, so the
        next write restarts the WAL. A reader of an older snapshot keeps a checkpoint from
        copying the frames after it: while that leaves many behind, writes are not held (the
        held copy would take as long as they are many), and the next tick tries again.
        """
        _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self._note_starved(frames - copied)
        if frames < WAL_RESTART_FRAMES:
            return frames, 0.0
        _busy, log, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if log - copied > WAL_RESTART_FRAMES // 4:
            return frames, 0.0
        with self._write_lock:
            held = time.perf_counter()
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return frames, time.perf_counter() - held

    def _note_starved(self, uncopied: int) -> None:
        """Remember since when checkpoints leave STARVED_FRAMES or more behind (a reader of an
        old snapshot: another process's open transaction), and forget it once they do not."""
        if uncopied < STARVED_FRAMES:
            self._starved = None
        elif self._starved is None:
            self._starved = (time.time(), uncopied)
        else:
            self._starved = (self._starved[0], uncopied)

    def scrub(self, conn: sqlite3.Connection) -> bool:
        """Empty the WAL after a deletion, whether it was done; tried again at the next
        tick when not.

        The WAL's frames keep every page as it was written, so a deleted person's values
        stayed readable in `-wal` after their erasure was answered: only a stop truncated
        it, and frames past the point the next writes reached stayed for days on a quiet
        hub. A TRUNCATE checkpoint copies the last frames back and cuts the file to zero;
        under the write lock, with no busy wait, it holds writes for that copy only, and a
        reader still on an older snapshot makes it give up until the next tick."""
        with self._write_lock:
            self._scrub_wanted = False
            conn.execute("PRAGMA busy_timeout=0")
            try:
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.OperationalError:  # "database is locked": another process writes
                busy = 1
            finally:
                conn.execute("PRAGMA busy_timeout=5000")
            if busy:
                self._scrub_wanted = True
            return not busy

    def _create_schema(self) -> None:
        """The tables and the schema version in one transaction: a first start that failed
        between them (a full disk, a kill) left tables without a version, which every later
        start took for schema 1 and refused."""
        try:
            self._writer.executescript(
                f"BEGIN IMMEDIATE;{DDL}{outbox.DDL}"
                "INSERT OR IGNORE INTO meta (key, value) "
                f"VALUES ('schema_version', '{SCHEMA_VERSION}');COMMIT;"
            )
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                self._writer.close()
            raise

    def _check_schema(self) -> None:
        """Refuse a database written by another schema version rather than corrupt it."""
        conn = self._writer
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        version = None
        if has_meta:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = self._version(row[0]) if row else 1

        while version is not None and version < SCHEMA_VERSION and version in MIGRATIONS:
            self._migrate(version)
            version += 1
        if version is not None and version > SCHEMA_VERSION:
            conn.close()  # a newer cityhub upgraded it, and this one was put back: keep the data
            raise StoreError(
                f"{self.path} was written by a newer cityhub (schema {version}; this one knows "
                f"up to {SCHEMA_VERSION}): run that cityhub, or restore a backup taken before "
                "the upgrade"
            )
        if version is not None and version != SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"{self.path} was written by cityhub schema {version}, which this cityhub "
                f"(schema {SCHEMA_VERSION}) cannot upgrade. Create a new database (the demo "
                "rebuilds its own)."
            )

    def _version(self, value: object) -> int:
        """meta.schema_version as a number; StoreError when it is none (a damaged file)."""
        try:
            return int(str(value))
        except ValueError:
            self._writer.close()
            raise StoreError(
                f"{self.path} holds schema version {value!r}, which no cityhub writes: the "
                "file is damaged or not cityhub's; restore a backup"
            ) from None

    def _migrate(self, version: int) -> None:
        """Upgrade the database from `version` to the next one, all or nothing."""
        conn = self._writer
        log.warning(
            "upgrading %s from schema %d to %d (one transaction; a large history takes a while)",
            self.path,
            version,
            version + 1,
        )
        started = time.monotonic()
        try:
            if version in BEFORE_MIGRATION:
                BEFORE_MIGRATION[version](conn)
            conn.executescript(f"BEGIN IMMEDIATE;{MIGRATIONS[version]}")
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version + 1,))
            conn.execute("COMMIT")
            log.warning(
                "upgraded %s to schema %d in %.1f s",
                self.path,
                version + 1,
                time.monotonic() - started,
            )
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise StoreError(
                f"cannot upgrade {self.path} from schema {version} to {version + 1} ({exc}); "
                "the database was left as it was"
            ) from exc

    def _connect(self, path: str | None = None) -> sqlite3.Connection:
        """A connection to the path (which it creates), or by default to the file, which must
        exist: a reader that opened a deleted database's path created an empty one there."""
        conn = (
            sqlite3.connect(self._uri, uri=True, check_same_thread=False, isolation_level=None)
            if path is None
            else sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        )
        for pragma in PRAGMAS:
            conn.execute(pragma)
        functions.register(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection; StoreLost once the file is deleted or replaced."""
        if self._watch.lost_at is not None:
            raise StoreLost()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except sqlite3.OperationalError:
                if self._watch.look():  # before the checkpointer noticed
                    raise StoreLost() from None
                raise
            if self._watch.look():  # it opened the file put in the old one's place
                conn.close()
                raise StoreLost()
            conn.execute("PRAGMA query_only=ON")
            self.names.reader(conn)
            self._local.conn = conn
            self._all_readers.append(conn)
        return conn

    @contextmanager
    def _bounded(
        self, conn: sqlite3.Connection, limit: ReadLimit | None = None
    ) -> Iterator[ReadLimit | None]:
        """Stop the statements of one read at its deadline (QueryTimeout), or once its client
        has left (ClientGone): a broad read would hold its reader thread, and the reads queued
        behind it, for nothing. The limit is the one of the request (api/readers.py: counted
        from when the read was queued) or, for a read without one, query_timeout from now.
        Yields it, for reads that continue on another thread."""
        limit = limit or reads.current.get()
        if limit is None:
            if not self.query_timeout:
                yield None
                return
            limit = ReadLimit(self.query_timeout)
        if time.monotonic() > limit.deadline:
            raise limit.stop()
        conn.set_progress_handler(lambda: time.monotonic() > limit.deadline, PROGRESS_STEPS)
        try:
            with functions.bounded(limit):
                yield limit
        except sqlite3.OperationalError as exc:
            if str(exc) != "interrupted" and not functions.tripped():
                raise
            raise limit.stop() from None
        except functions.DeadlinePassed:  # raised by Python work between statements
            raise limit.stop() from None
        finally:
            conn.set_progress_handler(None, 0)

    def close(self) -> None:
        """Stop the checkpointer, fold the WAL into the database, close every connection."""
        self._stop.set()
        self._checkpointer.join(timeout=5)
        self._counter.shutdown(wait=True)
        self._watch.save(self._writer, self._write_lock, now=True)  # a last try, if not saved
        with contextlib.suppress(sqlite3.Error):
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for conn in self._all_readers:
            conn.close()
        self._all_readers.clear()
        self._local = threading.local()
        self._writer.close()

    # -- writes ------------------------------------------------------------------------------
    @contextmanager
    def write(self, tenant: str) -> Iterator[SqliteWriteTx]:
        """A write transaction (BEGIN IMMEDIATE), or a savepoint inside group(); rolled back
        if the block raises. The block's changes reach the sink before it commits."""
        self._refuse_lost()
        with self._write_lock:
            conn = self._writer
            sink = self.sink
            capture = sink is not None and sink.wants(tenant)
            tx = SqliteWriteTx(
                conn,
                tenant,
                self.names,
                self.type_sets,
                capture=capture,
                max_bytes=self.max_entity_bytes,
                guard=self.guard,
            )
            if self._in_group:
                # without savepoints the caller isolates its jobs (api/commit.py)
                with (
                    _typed_full,
                    self.savepoint() if self._savepoints else contextlib.nullcontext(),
                ):
                    yield tx
                    self._group_items += self._to_outbox(tx)
                    self._group_withdrawn += self._withdraw(tx)
                self._group_wrote = True
                self._scrub_wanted = self._scrub_wanted or tx.erased
                return
            items: list[OutboxItem] = []
            try:
                with self._transaction(), _typed_full:
                    yield tx
                    items = self._to_outbox(tx)
                    withdrawn = self._withdraw(tx)
            except BaseException:  # the COMMIT failed: the items were never stored
                self._dropped(items)
                raise
            self._refused_at = None
            self._scrub_wanted = self._scrub_wanted or tx.erased
            self._handover(items, withdrawn)

    def _refuse_lost(self) -> None:
        """StoreLost once the file was deleted or replaced: a write would go into a file no
        one can open again."""
        if self._watch.lost_at is not None:
            raise StoreLost()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE on the writer, committed when the block ends; rolled back if the
        block or the COMMIT raises, and the attribute-name ids it assigned forgotten."""
        conn = self._writer
        self._refuse_lost()  # again under the lock: the copy of what it held is taken under it
        begin_immediate(conn)  # StoreBusy while another process writes
        try:
            yield conn
            with _typed_full:
                conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.names.rolled_back()
            self.type_sets.rolled_back()
            if isinstance(exc, StoreFull):
                self._refused_at = time.time()
                self._refused_cause = exc.limit
            raise
        self.names.committed(conn)
        self.type_sets.committed()

    @contextmanager
    def _alone(self) -> Iterator[sqlite3.Connection]:
        """The writer for a write outside write() (a resource, a stored @context): part of
        the open group, else its own transaction; a full disk is StoreFull either way, like
        an entity write, and never leaves a transaction open."""
        self._refuse_lost()
        with self._write_lock:
            if self._in_group:
                with _typed_full:
                    yield self._writer
                return
            with self._transaction() as conn, _typed_full:
                yield conn

    def _to_outbox(self, tx: SqliteWriteTx) -> list[OutboxItem]:
        """The sink's outbox items for a block's changes, written in the same transaction."""
        if not tx.changes or self.sink is None:
            return []
        changes = [
            Change(eid, before, after, tx.change_types.get(eid))
            for eid, (before, after) in tx.changes.items()
        ]
        try:
            items = self.sink.outbox_items(tx.tenant, changes)
        except Exception:  # a matching bug must not cost the write itself
            log.exception("subscription matching failed; these changes notify no one")
            return []
        try:
            outbox.add(self._writer, items)
        except BaseException:
            self._dropped(items)
            raise
        return items

    def _withdraw(self, tx: SqliteWriteTx) -> list[int]:
        """Inside the transaction: empty the unsent notifications that carry values of the
        entities the block erased (decision 095); their seqs."""
        if not tx.erased_ids or self.sink is None:
            return []
        seqs: list[int] = []
        for eid in tx.erased_ids:
            read = self._outbox_read.pop((tx.tenant, eid), None)
            takes = partial(self.sink.erases, eid)
            seqs += outbox.withdraw(self._writer, tx.tenant, eid, takes, read)
        return seqs

    def outbox_read_for_erasure(self, tenant: str, eid: str) -> None:
        """On a reader thread before an erasure's write: find the unsent notifications it
        will empty, so that its transaction re-checks those and the rows written since
        rather than scan the tenant's backlog while holding every write (decision 095)."""
        if self.sink is None:
            return
        key = (tenant, eid)
        self._outbox_read.pop(key, None)
        read = outbox.about(self._reader(), tenant, eid, partial(self.sink.erases, eid))
        self._outbox_read[key] = read

    def outbox_read_done(self, tenant: str, eid: str) -> None:
        """Forget what outbox_read_for_erasure found, if the erasure did not use it."""
        self._outbox_read.pop((tenant, eid), None)

    def _handover(self, items: list[OutboxItem], withdrawn: list[int] | None = None) -> None:
        """Give committed outbox items to the sink for delivery, and tell it which ones
        an erasure took back (it may hold them in memory)."""
        if self.sink is None:
            return
        if withdrawn:
            self.sink.withdrawn(withdrawn)
        if items:
            self.sink.committed(items)

    def _dropped(self, items: list[OutboxItem]) -> None:
        """Tell the sink which items a rollback took back (it undoes what it did for them:
        the throttling clocks)."""
        if items and self.sink is not None:
            self.sink.rolled_back(items)

    @contextmanager
    def group(self, *, savepoints: bool = True) -> Iterator[None]:
        """One transaction around several write() blocks (group commit, api/commit.py).

        With savepoints=False a write() that raises keeps what it wrote before the error: the
        caller must isolate its jobs with savepoint() or roll the whole group back.
        """
        self._refuse_lost()  # before the lock: a copy of a lost file may be holding it
        with self._write_lock:
            self._in_group = True
            self._savepoints = savepoints
            self._group_items = []
            self._group_wrote = False
            try:
                with self._transaction(), _typed_full:
                    yield
            except BaseException:  # rolled back: none of the group's items was stored
                dropped, self._group_items = self._group_items, []
                self._group_withdrawn = []
                self._dropped(dropped)
                raise
            finally:
                self._in_group = False
                self._savepoints = True
            items, self._group_items = self._group_items, []
            withdrawn, self._group_withdrawn = self._group_withdrawn, []
            if self._group_wrote:
                self._refused_at = None
            self._handover(items, withdrawn)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside group(): everything the block writes, notifications included, or nothing."""
        with self._write_lock:
            conn = self._writer
            mark, taken = len(self._group_items), len(self._group_withdrawn)
            conn.execute("SAVEPOINT job")
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                self._dropped(self._group_items[mark:])
                del self._group_items[mark:]
                del self._group_withdrawn[taken:]
                self.names.rolled_back()  # a name id the job took may be handed out again
                self.type_sets.rolled_back()
                raise
            conn.execute("RELEASE job")

    @staticmethod
    def damaged(exc: BaseException) -> bool:
        """Whether a driver error means the file itself is damaged (the API says: restore)."""
        return damaged(exc)

    def storage(self) -> dict[str, int]:
        """Bytes of the database file, of its WAL, and free on its disk (for /health)."""
        db = Path(self.path)
        wal = Path(self.path + "-wal")
        folder = db.resolve().parent
        while not folder.exists() and folder != folder.parent:  # a deleted folder
            folder = folder.parent
        return {
            "databaseBytes": db.stat().st_size if db.exists() else 0,
            "walBytes": wal.stat().st_size if wal.exists() else 0,
            "diskFreeBytes": shutil.disk_usage(folder).free,
        }

    def lost(self) -> str | None:
        """What became of a database file deleted or replaced while the hub ran, and what to
        do (for /health); None while it is the one opened."""
        return self._watch.reason()

    def checkpoint_failed(self) -> tuple[float, str] | None:
        """(epoch seconds of the first, the last error) while checkpoints keep failing, as on
        a full disk: the WAL then only grows (for /health)."""
        return self._checkpoint_failed

    def checkpoint_starved(self) -> tuple[float, int] | None:
        """(epoch seconds since when, frames) while checkpoints cannot copy STARVED_FRAMES or
        more of the WAL back, which then grows with every write (for /health)."""
        return self._starved

    def write_refused(self) -> float | None:
        """When (epoch seconds) a write was last refused for a full disk, if no entity write
        has committed since (/health); housekeeping writes (outbox, delivery status) do not
        count, as small ones may still fit where a client's write does not."""
        return self._refused_at

    def write_refused_cause(self) -> str:
        """The limit that refused the last refused write ('' for a full disk): /health's
        advice differs, since free space does not lift a size limit or a quota."""
        return self._refused_cause

    def prune_history(
        self, before: float, after: int = 0, limit: int = 2000
    ) -> tuple[int, int | None]:
        """One short step of history retention in its own transaction (temporal.prune);
        nothing while a group commit is open, so it never joins a request's transaction."""
        self._refuse_lost()
        with self._write_lock:
            if self._in_group:
                return 0, None
            with self._transaction() as conn, _typed_full:
                deleted, going_on = temporal.prune(conn, before, after, limit)
            self._scrub_wanted = self._scrub_wanted or deleted > 0
            return deleted, going_on

    def erase_history(
        self, erasure: Erasure, limit: int = erasures.STEP
    ) -> tuple[int, Erasure | None]:
        """One step of a temporal DELETE's erasure (erasures.step) of `limit` rows at most
        (erasures.STEP at most), in the open group or its own transaction: rows deleted, and
        the erasure as it goes on (None: done)."""
        with self._alone() as conn:
            self._scrub_wanted = True
            return erasures.step(conn, erasure, min(limit, erasures.STEP))

    def erasures(self) -> list[Erasure]:
        """The temporal DELETEs whose rows are still to be removed (resumed at start-up)."""
        with self._write_lock:
            return erasures.pending(self._writer)

    def changes(self) -> int:
        """Rows the writer has changed since it opened: tells whether a failed job wrote."""
        return self._writer.total_changes

    # -- the outbox (store/sqlite/outbox.py) -------------------------------------------------
    def outbox_pending(self) -> list[OutboxItem]:
        """Every undelivered outbox item, oldest first (queued again at start-up)."""
        return outbox.pending(self._reader())

    def outbox_heads(self, limit: int, budget: int) -> OutboxHeads:
        """Each subscription's oldest undelivered items, at most limit each and about budget
        bytes in all, and where the rest begins (start-up: memory bounded by the settings)."""
        return outbox.heads(self._reader(), limit, budget)

    def outbox_of(
        self, kind: str, tenant: str, sub_id: str, seq: int, limit: int
    ) -> list[OutboxItem]:
        """A subscription's undelivered items from seq on, oldest first (read back when the
        dispatcher has room for the part of a backlog it left on disk)."""
        return outbox.of_subscription(self._reader(), kind, tenant, sub_id, seq, limit)

    def outbox_stage(self, items: list[OutboxItem]) -> None:
        """Write outbox items for a change made outside write() (a stored resource): inside
        group() they commit with it and are handed over after COMMIT; alone, at once."""
        if not items:
            return
        with self._write_lock:
            if not self._in_group:
                with self.group():
                    self.outbox_stage(items)
                return
            try:
                with _typed_full:
                    outbox.add(self._writer, items)
            except BaseException:
                self._dropped(items)
                raise
            self._group_items += items

    def outbox_backlog(self) -> tuple[int, float | None]:
        """How many notifications the outbox holds, and when the oldest was written (epoch
        seconds; None: none): /health's gauge of what is still owed."""
        return outbox.backlog(self._reader())

    def outbox_kept(self, seqs: list[int]) -> set[int]:
        """Those of seqs whose outbox rows still hold a notification, as committed now."""
        return outbox.kept(self._reader(), seqs)

    def outbox_last(self) -> int:
        """The highest outbox seq given so far: bounds what a purge may delete."""
        return outbox.last(self._reader())

    def outbox_purge(
        self,
        kind: str,
        tenant: str,
        sub_id: str,
        since: int,
        upto: int,
        limit: int,
        inc: int | None = None,
    ) -> int:
        """Delete at most limit outbox rows of a subscription with seqs from since to upto
        (a deleted one's, of its incarnation inc if known, or those past
        CITYHUB_NOTIFY_OUTBOX_MAX)."""
        with self._write_lock:
            if not self._in_group:
                with self.group():
                    return self.outbox_purge(kind, tenant, sub_id, since, upto, limit, inc)
            with _typed_full:
                return outbox.purge(self._writer, kind, tenant, sub_id, (since, upto), limit, inc)

    def outbox_cut(self, tenant: str, sub_id: str, keep: int) -> int:
        """Where a subscription's outbox rows beyond its newest keep end (0: no more)."""
        return outbox.cut(self._reader(), tenant, sub_id, keep)

    def outbox_on_disk(self, tenant: str, sub_id: str, since: int) -> int:
        """How many of a subscription's outbox rows have seqs from since on."""
        return outbox.on_disk(self._reader(), tenant, sub_id, since)

    def outbox_nth(self, tenant: str, sub_id: str, since: int, n: int) -> int:
        """The seq of a subscription's n-th outbox row from since on (0: it has fewer)."""
        return outbox.nth(self._reader(), tenant, sub_id, since, n)

    def outbox_done(self, seqs: list[int]) -> None:
        """Delete delivered (or abandoned) outbox items."""
        if not seqs:
            return
        with self._write_lock:
            if not self._in_group:
                with self.group():
                    self.outbox_done(seqs)
                return
            with _typed_full:
                outbox.remove(self._writer, seqs)

    # -- reads -------------------------------------------------------------------------------
    def get(self, tenant: str, eid: str) -> Doc | None:
        """One entity's stored document."""
        text = self.get_json(tenant, eid)
        return orjson.loads(text) if text is not None else None

    def get_json(self, tenant: str, eid: str) -> str | None:
        """One entity's stored document as its JSON text (a cached rendering of the same text
        is still valid)."""
        row = (
            self._reader()
            .execute("SELECT doc FROM entities WHERE tenant = ? AND id = ?", (tenant, eid))
            .fetchone()
        )
        return row[0] if row else None

    def query(self, tenant: str, query: EntityQuery) -> tuple[list[Doc], int | None]:
        """Entities matching a query, in insertion order, with the total when asked."""
        conn = self._reader()
        with self._bounded(conn) as limit:
            if not query.count:
                return self._query(conn, tenant, query, limit)
            if conn.in_transaction:  # in a caller's snapshot (read_snapshot: a join), which
                # may have read already: a split count's other half is counted again on it
                return self._query(conn, tenant, query, limit, NEVER)
            version = self._data_version()  # before the snapshot begins
            conn.execute("BEGIN")  # one read snapshot: the count is the page's
            try:
                return self._query(conn, tenant, query, limit, version)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def _query(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        query: EntityQuery,
        limit: ReadLimit | None,
        version: int = 0,
    ) -> tuple[list[Doc], int | None]:
        by_type = isinstance(query.types, ast.TypeName) and query.ids is None
        comp = Compiler(conn, pk="t.pk" if by_type else "e.pk", names=self.names)
        where = comp.where(tenant, query)
        self._install_geo(conn, comp)
        if by_type:
            # One type: walk entity_types in pk order; entity rows are read only for matches.
            source, order = "entity_types t CROSS JOIN entities e ON e.pk = t.pk", "t.pk"
            count_source = source if "e." in where else "entity_types t"
        else:
            source, order, count_source = "entities e", "e.pk", "entities e"
            if id_bound(query) is not None:
                # insertion order still, but sorted after the look-up: ordered by plain e.pk,
                # SQLite walked the whole tenant in pk order rather than use UNIQUE (tenant,
                # id) (525 ms for 1,000 absent ids among 400,000 entities, 0.6 ms sorted)
                order = "+e.pk"
        total = None
        counter = Compiler(conn, pk="d.pk", names=self.names)
        driven = counter.count_sql(tenant, query) if query.count and by_type else None
        if driven is not None:  # by a value index (decision 067)
            span = conn.execute(TYPE_SPAN, [tenant, query.types.name]).fetchone()
            total = self._count_driven(conn, driven, counter, span, limit, version)
        elif query.count:
            span = (TYPE_SPAN, [tenant, query.types.name]) if by_type else (ALL_SPAN, [])
            sql = f"SELECT count(*) FROM {count_source} WHERE {where}"
            pk = "t.pk" if by_type else "e.pk"
            total = self._count(conn, sql, comp, pk, span, limit, version)
        docs: list[Doc] = []
        params = list(comp.params)
        if query.order:
            order = comp.order_by(query.order, order)
            params = list(comp.params)
        if query.limit > 0:
            rows = conn.execute(
                f"SELECT e.doc FROM {source} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, query.limit, query.offset],
            ).fetchall()
            docs = [orjson.loads(r[0]) for r in rows]
        return docs, total

    def _count(
        self,
        conn: sqlite3.Connection,
        sql: str,
        comp: Compiler,
        pk: str,
        span: tuple[str, list[Any]],
        limit: ReadLimit | None,
        version: int,
    ) -> int:
        """count(*) of a query; over a wide pk span probed row by row, as two halves counted
        at once. `version` is the database's data_version before this read began: if any
        connection committed since, the other half's snapshot may not be this one, and that
        half is counted again here. (A count of the writer's commits missed other processes,
        and a commit the writer's thread had not yet counted: 5 of 684 counts were off.)"""
        lo, hi = (None, None) if comp.narrowed else conn.execute(*span).fetchone()
        if lo is None or hi - lo < SPLIT_SPAN:
            return int(conn.execute(sql, comp.params).fetchone()[0])
        mid = (lo + hi) // 2
        ranged = f"{sql} AND {pk} BETWEEN ? AND ?"
        other = self._counter.submit(self._count_part, ranged, [*comp.params, mid + 1, hi], limit)
        mine = conn.execute(ranged, [*comp.params, lo, mid]).fetchone()[0]
        theirs = other.result()
        if self._data_version() != version:
            theirs = conn.execute(ranged, [*comp.params, mid + 1, hi]).fetchone()[0]
        return int(mine + theirs)

    def _count_driven(
        self,
        conn: sqlite3.Connection,
        sql: str,
        counter: Compiler,
        span: tuple[int | None, int | None],
        limit: ReadLimit | None,
        version: int,
    ) -> int:
        """A count_sql count over the span of the type's pks; a wide one as two halves
        counted at once, as _count splits its counts (and counts the other half again when
        the data_version moved)."""
        lo, hi = span
        if lo is None or hi is None:
            return 0  # no entity of the type
        if hi - lo < SPLIT_SPAN:
            return int(conn.execute(sql, counter.span_params(lo, hi)).fetchone()[0])
        mid = (lo + hi) // 2
        theirs_params = counter.span_params(mid + 1, hi)
        other = self._counter.submit(self._count_part, sql, theirs_params, limit)
        mine = conn.execute(sql, counter.span_params(lo, mid)).fetchone()[0]
        theirs = other.result()
        if self._data_version() != version:
            theirs = conn.execute(sql, theirs_params).fetchone()[0]
        return int(mine + theirs)

    def _data_version(self) -> int:
        """PRAGMA data_version on a connection of its own: it changes whenever another
        connection, of this process or another, commits."""
        with self._versions_lock:
            return int(self._versions.execute("PRAGMA data_version").fetchone()[0])

    def _count_part(self, sql: str, params: list[Any], limit: ReadLimit | None) -> int:
        """One half of a split count, on the reader thread's own connection (never a geoQ:
        its R*Tree IN list marks the plan narrowed), within the same limit."""
        conn = self._reader()
        with self._bounded(conn, limit):
            return int(conn.execute(sql, params).fetchone()[0])

    @staticmethod
    def _install_geo(conn: sqlite3.Connection, comp: Compiler) -> None:
        """geo_match(qid, geojson) for this query's geo predicates."""
        if not comp.geo_queries:
            return
        import shapely

        from cityhub.ngsild.query.geo import geo_matches

        queries = list(comp.geo_queries)
        for gq in queries:  # a prepared geometry answers point tests several times faster
            shapely.prepare(gq.geometry)

        def geo_match(qid: int, geojson: str) -> bool:
            return geo_matches(queries[qid], orjson.loads(geojson))

        conn.create_function("geo_match", 2, functions.checked(geo_match))

    def entity_types(
        self, tenant: str, *, names: bool = True, only: str | None = None
    ) -> list[tuple[str, list[str], int]]:
        """(type, attribute names, entity count) for every type in the tenant, or for the one
        named `only`, from the discovery counts (typestats)."""
        conn = self._reader()
        if not names:  # one statement, one snapshot
            with self._bounded(conn):
                return [
                    (typ, [], count) for typ, count in typestats.type_counts(conn, tenant, only)
                ]
        with self._bounded(conn), _snapshot(conn):  # the names are those of the counted types
            rows = typestats.type_counts(conn, tenant, only)
            held = typestats.type_attr_names(conn, tenant, only)
            return [(typ, held.get(typ, []), count) for typ, count in rows]

    def type_info(self, tenant: str, typ: str) -> tuple[int, list[tuple[str, list[str]]]] | None:
        """(entity count, (attribute, its kinds) by name) of one type read in one snapshot, or
        None when no entity has it: read apart, a write between them showed a count of the
        entities before it beside the attributes of those after."""
        conn = self._reader()
        with self._bounded(conn), _snapshot(conn):
            rows = typestats.type_counts(conn, tenant, typ)
            if not rows:
                return None
            return int(rows[0][1]), typestats.type_attributes(conn, tenant, typ)

    def attribute_names(self, tenant: str) -> list[str]:
        """The names of every attribute in the tenant, from the discovery counts."""
        conn = self._reader()
        with self._bounded(conn):
            return typestats.attribute_names(conn, tenant)

    def attribute_info(self, tenant: str, name: str) -> tuple[list[str], list[str], int] | None:
        """(attribute kinds, entity types, entity count) of one attribute, or None."""
        conn = self._reader()
        nid = self.names.lookup(conn, name)
        with self._bounded(conn):
            found = typestats.attributes(conn, tenant, nid)
        if not found:
            return None
        _, kinds, types, count = found[0]
        return kinds, types, count

    def attribute_stats(self, tenant: str) -> list[tuple[str, list[str], list[str], int]]:
        """(attribute, attribute kinds, entity types, entity count) for every attribute."""
        conn = self._reader()
        with self._bounded(conn):
            return typestats.attributes(conn, tenant)

    def tenants(self) -> list[str]:
        """Every tenant that has stored something, from the tenants table."""
        return [r[0] for r in self._reader().execute("SELECT tenant FROM tenants ORDER BY 1")]

    def answers(self) -> None:
        """Read one row, to show the store answers (/health, on the event loop at every poll:
        reading every tenant took 129 ms with 100,000 of them)."""
        self._reader().execute("SELECT 1 FROM tenants LIMIT 1").fetchone()

    def has_tenant(self, tenant: str) -> bool:
        """Whether a tenant has ever stored anything (deleting it all keeps the tenant)."""
        return resources.has_tenant(self._reader(), tenant)

    # -- temporal ----------------------------------------------------------------------------
    def temporal(
        self, tenant: str, query: TemporalQuery
    ) -> tuple[list[tuple[Doc, dict[str, list[Doc]]]], int | None]:
        """Temporal evolution of matching entities, read in one snapshot."""
        conn = self._reader()
        with self._bounded(conn), _snapshot(conn):
            return temporal.select(conn, self.names, tenant, query, self._install_geo)

    def aggregate(
        self, tenant: str, query: TemporalQuery, aggr: Aggregation
    ) -> tuple[list[tuple[Doc, dict[str, list[Doc]]]], int | None]:
        """aggregatedValues of matching entities (per attribute, a series per datasetId), read
        in one snapshot."""
        conn = self._reader()
        with self._bounded(conn), _snapshot(conn):
            return temporal.aggregate(conn, self.names, tenant, query, aggr, self._install_geo)

    def has_history(self, tenant: str, eid: str) -> bool:
        """Whether an entity has a temporal evolution (a read: committed data)."""
        return temporal.exists(self._reader(), tenant, eid)

    # -- hosted @contexts --------------------------------------------------------------------
    def contexts(self) -> Iterator[tuple[str, Any, str, str]]:
        """(url, document, kind, createdAt) of every stored context, oldest first."""
        rows = self._reader().execute(
            "SELECT url, kind, doc, created_at FROM contexts ORDER BY created_at, url"
        )
        for url, kind, doc, created_at in rows:
            yield url, orjson.loads(doc), kind, created_at

    def context(self, url: str, kind: str) -> Any | None:
        """The stored document of one context of this kind (None: there is none)."""
        row = (
            self._reader()
            .execute("SELECT doc FROM contexts WHERE url = ? AND kind = ?", (url, kind))
            .fetchone()
        )
        return None if row is None else orjson.loads(row[0])

    def put_context(
        self, url: str, document: Any, kind: str, created_at: str | None = None
    ) -> None:
        """Store a context that must survive restarts (hosted or implicitly created), with
        the createdAt the API showed for it (now when none is given)."""
        with self._alone() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO contexts (url, kind, doc, created_at) VALUES (?, ?, ?, ?)",
                (url, kind, _dumps(document), created_at or now_iso()),
            )

    def delete_context(self, url: str) -> bool:
        """Remove a stored context and its usage; False when none was stored under url."""
        with self._alone() as conn:
            conn.execute("DELETE FROM context_usage WHERE url = ?", (url,))
            cur = conn.execute("DELETE FROM contexts WHERE url = ?", (url,))
            return cur.rowcount > 0

    def context_usage(self) -> dict[str, tuple[int, str | None]]:
        """url -> (numberOfHits, lastUsage) as last saved."""
        rows = self._reader().execute("SELECT url, hits, last_usage FROM context_usage")
        return {url: (hits, last) for url, hits, last in rows}

    def save_context_usage(self, rows: Iterable[tuple[str, int, str | None]]) -> None:
        """Save (url, numberOfHits, lastUsage) rows, in one transaction."""
        with self._alone() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO context_usage (url, hits, last_usage) VALUES (?, ?, ?)",
                rows,
            )

    # -- other stored resources (subscriptions, registrations): see store/sqlite/resources.py -
    def resource_create(self, kind: str, tenant: str, rid: str, doc: Doc) -> bool:
        """Store a new resource; False when (kind, tenant, id) is taken."""
        with self._alone() as conn:
            return resources.insert(conn, kind, tenant, rid, doc)

    def resource_get(self, kind: str, tenant: str, rid: str) -> Doc | None:
        """One stored resource."""
        return resources.get(self._reader(), kind, tenant, rid)

    def resource_list(
        self, kind: str, tenant: str, limit: int | None = None, offset: int = 0
    ) -> tuple[list[Doc], int]:
        """A page of a tenant's resources of one kind (oldest first) and their total."""
        conn = self._reader()
        with _snapshot(conn):  # the total is the page's (two statements)
            return resources.select(conn, kind, tenant, limit, offset), resources.count(
                conn, kind, tenant
            )

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Let every read of this thread in the block see one state of the database (one read
        transaction on its reader connection; the writer is not held): a read that joins
        linked entities reads them in statements after the entity's own."""
        with _snapshot(self._reader()):
            yield

    def resource_scan(
        self, kind: str, tenant: str, keep: Callable[[Doc], bool], limit: int, offset: int
    ) -> tuple[list[Doc], int]:
        """The page of a tenant's resources of one kind that keep() accepts, and their total,
        in one statement (one snapshot) under the query deadline: keep() is Python run per row
        (discovery, on a reader thread)."""
        conn = self._reader()
        with self._bounded(conn):
            return resources.scan(conn, kind, tenant, keep, limit, offset, functions.check_deadline)

    def resource_update(
        self, kind: str, tenant: str, rid: str, change: Callable[[Doc], Doc]
    ) -> Doc | None:
        """Replace a resource with change(old) atomically; None when it does not exist."""
        with self._alone() as conn:
            return resources.update(conn, kind, tenant, rid, change)

    def resource_set_member(self, kind: str, member: str, rows: list[tuple[str, str, Any]]) -> None:
        """Set one top-level member of many resources, each (tenant, id, value), in one
        transaction (or the open group); those that are gone are skipped."""
        with self._alone() as conn:
            resources.set_member(conn, kind, member, rows)

    def resource_delete(self, kind: str, tenant: str, rid: str, scrub: bool = False) -> bool:
        """Remove a resource; False when it did not exist. `scrub`: it held what must leave
        the files (a dead letter's raw payload), so the WAL is emptied after."""
        with self._alone() as conn:
            gone = resources.delete(conn, kind, tenant, rid)
        self._scrub_wanted = self._scrub_wanted or (scrub and gone)
        return gone

    def resources_if_changed(
        self, kind: str, version: int
    ) -> tuple[int, list[tuple[str, str]] | None]:
        """Inside write() only: the writer's data_version, which moves only when another
        connection commits (a hub beside `cityhub import`), and, when it is not `version`,
        (tenant, JSON) of every resource of one kind as this write sees them, else None."""
        conn = self._writer
        now = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if now == version:
            return now, None
        return now, resources.select_raw_every_tenant(conn, kind)

    def resource_every_tenant(self, kind: str) -> list[tuple[str, Doc]]:
        """(tenant, document) of every stored resource of one kind."""
        return resources.select_every_tenant(self._reader(), kind)

    def resource_count_all(self, kind: str) -> int:
        """How many resources of one kind all tenants hold (bounded stores count at start-up)."""
        return resources.count_kind(self._reader(), kind)

    def resource_trim(self, kind: str, keep: int) -> int:
        """Drop the oldest resources of one kind beyond the newest `keep`; how many went."""
        with self._alone() as conn:
            return resources.trim(conn, kind, keep)

    def resource_clear(self, kind: str, tenant: str, where: tuple[str, str] | None = None) -> int:
        """Delete every resource of one kind in a tenant, or those whose member where[0] is
        where[1] (dead letters: raw device payloads, so the WAL is emptied after, as for
        history); how many went."""
        with self._alone() as conn:
            gone = resources.delete_kind(conn, kind, tenant, where)
        self._scrub_wanted = self._scrub_wanted or gone > 0
        return gone

    def outbox_expire(self, before: float) -> int:
        """Empty the unsent entity notifications written before `before` (epoch seconds):
        retention bounds the values they carry too (decision 095); how many. The sink is
        told after COMMIT, as for an erasure, and the WAL is emptied after."""
        # the sink is told under the lock, as after any write: in order with the items of
        # the writes before and after it
        with self._write_lock:
            with self._alone() as conn:
                seqs = outbox.expire(conn, before)
                grouped = self._in_group
                if grouped:  # handed over with the group's items after its COMMIT
                    self._group_withdrawn += seqs
            self._scrub_wanted = self._scrub_wanted or bool(seqs)
            if not grouped:
                self._handover([], seqs)
        return len(seqs)

    def resource_expire(self, kind: str, member: str, before: str) -> int:
        """Delete the resources of one kind whose timestamp `member` is before `before` (dead
        letters past retention); how many went. The WAL is emptied after, as for history."""
        with self._alone() as conn:
            gone = resources.expire(conn, kind, member, before)
        self._scrub_wanted = self._scrub_wanted or gone > 0
        return gone


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction around a read of several statements: each statement in autocommit
    reads its own snapshot, so a temporal read showed half of an append of two attributes, and
    entities deleted between its statements without their instances (probe races). Inside
    one already open (read_snapshot), the read is part of it."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def damaged(exc: BaseException) -> bool:
    """Whether SQLite found the file itself damaged (SQLITE_CORRUPT, SQLITE_NOTADB): neither a
    retry nor a narrower request helps, only a backup."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    return "malformed" in str(exc) or "not a database" in str(exc)


class _TypedFull:
    """SQLite's "database or disk is full", and a write the disk refused (a size limit, a
    quota: no_room.py), as the store's StoreFull (the API answers 503);
    a class, not a generator, because every write enters it."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if isinstance(exc, sqlite3.OperationalError):
            room = no_room(exc)
            if room is not None:
                raise StoreFull(f"the database cannot grow: {room[0]}", room[1]) from exc


_typed_full = _TypedFull()


class SqliteWriteTx:
    """The operations of one write transaction."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        names: AttrNames,
        type_sets: TypeSets,
        capture: bool = False,
        max_bytes: int = DEFAULT_MAX_ENTITY_BYTES,
        guard: WriteGuard | None = None,
    ) -> None:
        self.names = names
        self.guard = guard  # refuses writes of exclusively registered attributes
        self.max_bytes = max_bytes  # JSON bytes one entity may take (0: no bound)
        self.type_sets = type_sets
        self.conn = conn
        self.tenant = tenant
        self.capture = capture  # keep each entity's JSON before and after (for the sink)
        self.changes: dict[str, tuple[str | None, str | None]] = {}
        # the types of each changed entity before and after, when known without parsing
        self.change_types: dict[str, frozenset[str] | None] = {}
        self._tenant_recorded = False
        # what get() read of each entity this block has not rewritten since: its row id, its
        # stored JSON and the outline of its counts, so that update() needs no second read
        self._read: dict[str, tuple[int, str, typestats.Outline]] = {}
        self.erased = False  # an entity or history deleted: the WAL is cleared after (scrub)
        # entities whose whole history this block deleted: their unsent notifications go too
        self.erased_ids: list[str] = []
        # (pk, stored JSON) of entities existing_ids found, for get() to read without a
        # statement; dropped once read or written
        self._known: dict[str, tuple[int, str]] = {}
        # add_history_many entries held by history_in_one_round, with their writes' times
        self._held: list[tuple[HistoryEntry, str]] | None = None
        # and the attr_index rows of each (pk, nid) an update rewrote, the last write's
        self._held_rows: dict[tuple[int, int], list[tuple[Any, ...]]] = {}

    def _record_tenant(self) -> None:
        """The tenant exists from its first stored entity or instance on, whatever is
        deleted later (once per transaction: one index probe)."""
        if not self._tenant_recorded:
            resources.record_tenant(self.conn, self.tenant)
            self._tenant_recorded = True

    def _changed(
        self, eid: str, before: str | None, after: str | None, types: list[str] | None = None
    ) -> None:
        """Note a change; the first state this block saw stays the "before". `types`: every
        type of the entity before and after this change, if the caller knows them."""
        if self.capture:
            seen = eid in self.changes
            first = self.changes[eid][0] if seen else before
            self.changes[eid] = (first, after)
            known = self.change_types.get(eid, frozenset()) if seen else frozenset()
            self.change_types[eid] = None if types is None or known is None else known | set(types)

    def get(self, eid: str) -> Doc | None:
        """Read inside the transaction (sees its own writes)."""
        row = (
            self._known.pop(eid, None)
            or self.conn.execute(
                "SELECT pk, doc FROM entities WHERE tenant = ? AND id = ?", (self.tenant, eid)
            ).fetchone()
        )
        if row is None:
            return None
        doc: Doc = orjson.loads(row[1])
        self._read[eid] = (row[0], row[1], typestats.outline(doc))
        return doc

    def insert(self, doc: Doc) -> None:
        """Add a new entity; EntityExists if the id is taken, EntityTooLarge past the bound."""
        raw = orjson.dumps(doc)
        if self.max_bytes and len(raw) > self.max_bytes:
            check_size(len(raw), self.max_bytes, doc["id"])
        if self.guard is not None:
            self.guard.check_write(self.tenant, doc)
        text = raw.decode()
        try:
            cur = self.conn.execute(
                "INSERT INTO entities (tenant, id, created_at, modified_at, doc) VALUES (?, ?, ?, ?, ?)",
                (self.tenant, doc["id"], doc["createdAt"], doc["modifiedAt"], text),
            )
        except sqlite3.IntegrityError as exc:
            raise EntityExists(doc["id"]) from exc
        self._record_tenant()
        tid = self._tid(doc["type"])
        self.type_sets.count(self.conn, Counter({tid: 1}))
        self._index(int(cur.lastrowid or 0), doc, tid)
        typestats.change(self.conn, self.tenant, None, self._shape(doc))
        self._changed(doc["id"], None, text, doc["type"])

    def existing_ids(self, ids: list[str]) -> set[str]:
        """Which of these ids already name an entity in the tenant; their rows are kept for
        get(), which a batch calls next for each (one statement for all, not one each)."""
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for eid, pk, text in self.conn.execute(
                f"SELECT id, pk, doc FROM entities WHERE tenant = ? AND id IN ({marks})",
                [self.tenant, *chunk],
            ):
                found.add(eid)
                self._known[eid] = (pk, text)
        return found

    def matching(self, query: EntityQuery, limit: int | None = None) -> set[str]:
        """The ids of the entities that meet the query now (at most `limit` of them), read
        inside the transaction (a purge selects on a reader and deletes later: a PATCH in
        between must count)."""
        self._write_rows()
        comp = Compiler(self.conn, pk="e.pk", names=self.names)
        where = comp.where(self.tenant, query)
        SqliteStore._install_geo(self.conn, comp)
        cut = f" LIMIT {int(limit)}" if limit is not None else ""
        rows = self.conn.execute(f"SELECT e.id FROM entities e WHERE {where}{cut}", comp.params)
        return {r[0] for r in rows}

    def insert_many(self, docs: list[Doc]) -> dict[int, NgsiLdError]:
        """Insert new entities (ids known to be free) with one statement per table; those
        past the byte bound are left out, returned by their position in docs."""
        c = self.conn
        self._record_tenant()
        (pk,) = c.execute("SELECT coalesce(max(pk), 0) FROM entities").fetchone()
        (gid,) = c.execute("SELECT coalesce(max(gid), 0) FROM geo").fetchone()
        rows, types, attrs, geos, boxes = [], [], [], [], []
        shapes: Counter[typestats.Shape] = Counter()
        sets: Counter[int] = Counter()
        ids = self.names.memo(c)
        refused: dict[int, NgsiLdError] = {}
        bound = self.max_bytes
        for at, doc in enumerate(docs):
            raw = orjson.dumps(doc)
            try:
                if bound and len(raw) > bound:
                    check_size(len(raw), bound, doc["id"])
                if self.guard is not None:
                    self.guard.check_write(self.tenant, doc)
            except (EntityTooLarge, Conflict) as err:
                refused[at] = err
                continue
            pk += 1
            text = raw.decode()
            rows.append((pk, self.tenant, doc["id"], doc["createdAt"], doc["modifiedAt"], text))
            self._changed(doc["id"], None, text, doc["type"])
            types += [(self.tenant, t, pk) for t in doc["type"]]
            tid = self._tid(doc["type"])
            sets[tid] += 1
            attrs += self._attr_rows(pk, doc, tid, ids)
            shapes[typestats.shape(doc, ids.__getitem__)] += 1
            for name, geojson, box in geo_rows(doc):
                gid += 1
                geos.append((gid, pk, name, geojson))
                boxes.append((gid, *box))
        insert_rows(c, "INSERT INTO entities (pk, tenant, id, created_at, modified_at, doc)", rows)
        insert_rows(c, "INSERT INTO entity_types (tenant, type, pk)", types)
        self._write_rows()
        insert_rows(c, "INSERT INTO attr_index (pk, nid, tid, seq, num, txt, ts)", attrs)
        insert_rows(c, "INSERT INTO geo (gid, pk, name, geojson)", geos)
        insert_rows(c, "INSERT INTO geo_rtree (gid, minx, maxx, miny, maxy)", boxes)
        typestats.apply(c, self.tenant, shapes)
        self.type_sets.count(c, sets)
        return refused

    def add_history_bulk(self, entries: list[HistoryEntry]) -> None:
        """Append the first instances of many entities at once, with their scopes."""
        self._write_held()
        self._record_tenant()
        temporal.add_bulk(self.conn, self.names, self.tenant, entries)

    @contextmanager
    def history_in_one_round(self) -> Iterator[None]:
        """Hold the block's add_history_many entries, and the attr_index rows its updates
        rewrite, and write them when it ends, all in a few statements, as each would have
        been (decision 086); every other use of the history or of attr_index writes those
        held so far first. Nothing is written if the block raises."""
        self._held = []
        try:
            yield
        except BaseException:
            self._held = None
            self._held_rows = {}
            raise
        self._write_held()
        self._write_rows()
        self._held = None

    def _write_rows(self) -> None:
        """Rewrite the attr_index rows held so far: the old ones of each (pk, nid) go, the
        last update's come (an update of the same attribute before it left nothing else)."""
        if self._held_rows:
            held, self._held_rows = self._held_rows, {}
            self.conn.executemany("DELETE FROM attr_index WHERE pk = ? AND nid = ?", list(held))
            insert_rows(
                self.conn,
                "INSERT INTO attr_index (pk, nid, tid, seq, num, txt, ts)",
                [row for rows in held.values() for row in rows],
            )

    def _write_held(self) -> None:
        """Write the add_history_many entries held so far (in order), and hold on."""
        if self._held:
            held, self._held = self._held, []
            self._record_tenant()
            temporal.add_timed(self.conn, self.names, self.tenant, held)

    def update(self, doc: Doc, changed: set[str] | None = None) -> None:
        """Replace an existing entity's document and its index rows.

        `changed` names the attributes that changed ("@type" for the types): only their index
        rows are rewritten. None rewrites them all. EntityTooLarge past the byte bound, before
        anything is written.
        """
        raw = orjson.dumps(doc)
        if self.max_bytes and len(raw) > self.max_bytes:
            check_size(len(raw), self.max_bytes, doc["id"])
        read = self._read.pop(doc["id"], None)
        self._known.pop(doc["id"], None)
        if read is None:
            row = self.conn.execute(
                "SELECT pk, doc FROM entities WHERE tenant = ? AND id = ?",
                (self.tenant, doc["id"]),
            ).fetchone()
            if row is None:
                self.insert(doc)
                return
            read = (row[0], row[1], typestats.outline(orjson.loads(row[1])))
        pk, before, seen = read
        if self.guard is not None:
            try:
                self.guard.check_write(self.tenant, doc, before, changed)
            except Conflict:
                self._read[doc["id"]] = read  # nothing was written: what get() read stands
                raise
        retyped = changed is None or "@type" in changed
        only = None if retyped else changed
        tid = self._tid(doc["type"])
        old_tid = self._tid(seen[0]) if retyped else tid
        if old_tid != tid:
            self.type_sets.count(self.conn, Counter({tid: 1, old_tid: -1}))
        nid = self._nid
        typestats.change(
            self.conn,
            self.tenant,
            typestats.outline_shape(seen, nid, only),
            typestats.shape(doc, nid, only),
        )
        text = raw.decode()
        self.conn.execute(
            "UPDATE entities SET modified_at = ?, doc = ? WHERE pk = ?",
            (doc["modifiedAt"], text, pk),
        )
        if self.capture:
            same_types = changed is not None and "@type" not in changed
            self._changed(doc["id"], before, text, doc["type"] if same_types else None)
        if changed is None:
            self._unindex(pk)
            self._index(pk, doc, tid)
        else:
            self._reindex(pk, doc, changed, seen, (old_tid, tid))

    def _reindex(
        self,
        pk: int,
        doc: Doc,
        changed: set[str],
        seen: typestats.Outline,
        tids: tuple[int, int],
    ) -> None:
        """Rewrite the index rows of some attributes (and the types when "@type" changed);
        `seen`: the outline of the document before, which tells where geometries were;
        `tids`: its type set before and now (the rows of the others move when they differ)."""
        c = self.conn
        names = [n for n in changed if n != "@type"]
        old_tid, tid = tids
        if "@type" in changed:
            c.execute("DELETE FROM entity_types WHERE pk = ?", (pk,))
            c.executemany(
                "INSERT INTO entity_types (tenant, type, pk) VALUES (?, ?, ?)",
                [(self.tenant, t, pk) for t in doc["type"]],
            )
        if old_tid != tid:
            self._write_rows()
            c.execute("UPDATE attr_index SET tid = ? WHERE pk = ?", (tid, pk))
        if not names:
            return
        part = {"attrs": {n: doc["attrs"][n] for n in names if n in doc["attrs"]}}
        if self._held is not None:  # history_in_one_round: written at its end
            attrs, nid = part["attrs"], self._nid
            for n in names:
                key = (pk, nid(n))
                self._held_rows[key] = attr_keys(attrs[n], (*key, tid)) if n in attrs else []
        else:
            c.executemany(
                "DELETE FROM attr_index WHERE pk = ? AND nid = ?",
                [(pk, self.names.assign(c, n)) for n in names],
            )
            insert_rows(
                c,
                "INSERT INTO attr_index (pk, nid, tid, seq, num, txt, ts)",
                self._attr_rows(pk, part, tid),
            )
        # geo rows exist only for attributes that had a GeoProperty instance
        before = seen[1]
        geo_names = [(pk, n) for n in names if n in before and "GeoProperty" in before[n][0]]
        if geo_names:
            c.executemany(
                "DELETE FROM geo_rtree WHERE gid IN "
                "(SELECT gid FROM geo WHERE pk = ? AND name = ?)",
                geo_names,
            )
            c.executemany("DELETE FROM geo WHERE pk = ? AND name = ?", geo_names)
        self._index_geo(pk, part)

    def delete(self, eid: str) -> Doc | None:
        """Remove an entity; the document it had, or None if it did not exist."""
        self._read.pop(eid, None)
        self._known.pop(eid, None)
        row = self.conn.execute(
            "SELECT pk, doc FROM entities WHERE tenant = ? AND id = ?", (self.tenant, eid)
        ).fetchone()
        if row is None:
            return None
        old: Doc = orjson.loads(row[1])
        self.erased = True
        self.conn.execute("DELETE FROM entities WHERE pk = ?", (row[0],))
        typestats.change(self.conn, self.tenant, self._shape(old), None)
        self.type_sets.count(self.conn, Counter({self._tid(old["type"]): -1}))
        self._unindex(row[0])
        if self.capture:
            self._changed(eid, row[1], None)
        return old

    def _index(self, pk: int, doc: Doc, tid: int) -> None:
        self._write_rows()
        c = self.conn
        c.executemany(
            "INSERT INTO entity_types (tenant, type, pk) VALUES (?, ?, ?)",
            [(self.tenant, t, pk) for t in doc["type"]],
        )
        c.executemany(
            "INSERT INTO attr_index (pk, nid, tid, seq, num, txt, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
            self._attr_rows(pk, doc, tid),
        )
        self._index_geo(pk, doc)

    def _shape(self, doc: Doc, only: Iterable[str] | None = None) -> typestats.Shape:
        """What the document adds to the discovery counts (typestats)."""
        return typestats.shape(doc, self._nid, only)

    def _nid(self, name: str) -> int:
        """The id of an attribute name (assigned on first use)."""
        return self.names.assign(self.conn, name)

    def _attr_rows(
        self, pk: int, doc: Doc, tid: int, ids: Assigned | None = None
    ) -> list[tuple[Any, ...]]:
        """attr_index rows (pk, nid, tid, seq, num, txt, ts) of a document in type set `tid`,
        names as their ids (from `ids`, a bulk write's)."""
        ids = self.names.memo(self.conn) if ids is None else ids
        rows: list[tuple[Any, ...]] = []
        for name, instances in doc["attrs"].items():
            rows += attr_keys(instances, (pk, ids[name], tid))
        return rows

    def _tid(self, types: list[str] | tuple[str, ...]) -> int:
        """The type set of an entity of these types in this tenant (typesets)."""
        return self.type_sets.assign(self.conn, self.tenant, types)

    def _index_geo(self, pk: int, doc: Doc) -> None:
        c = self.conn
        for name, geojson, box in geo_rows(doc):
            cur = c.execute(
                "INSERT INTO geo (pk, name, geojson) VALUES (?, ?, ?)", (pk, name, geojson)
            )
            c.execute(
                "INSERT INTO geo_rtree (gid, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)",
                (cur.lastrowid, *box),
            )

    def _unindex(self, pk: int) -> None:
        self._write_rows()
        c = self.conn
        c.execute("DELETE FROM entity_types WHERE pk = ?", (pk,))
        c.execute("DELETE FROM attr_index WHERE pk = ?", (pk,))
        c.execute("DELETE FROM geo_rtree WHERE gid IN (SELECT gid FROM geo WHERE pk = ?)", (pk,))
        c.execute("DELETE FROM geo WHERE pk = ?", (pk,))

    # -- temporal ----------------------------------------------------------------------------
    def add_history(
        self, eid: str, types: list[str], attr: str, instances: list[Doc], scope: Any = ...
    ) -> None:
        """Append attribute instances to an entity's temporal evolution (a scope given, None
        for none, replaces the temporal entity's; `...` keeps it)."""
        self._write_held()
        self._record_tenant()
        temporal.add(
            self.conn, self.names, self.tenant, eid, types, attr, instances, scope, self.max_bytes
        )

    def add_history_many(
        self, eid: str, types: list[str], attrs: dict[str, list[Doc]], scope: Any = ...
    ) -> None:
        """Append instances of several attributes in one go, and the entity's scope (held,
        inside history_in_one_round, unless `...` keeps the stored one)."""
        if self._held is not None and scope is not temporal.KEEP:
            self._held.append(((eid, types, attrs, scope), temporal.write_time(attrs)))
            return
        self._write_held()
        self._record_tenant()
        temporal.add_many(self.conn, self.names, self.tenant, eid, types, attrs, scope)

    def record_deletion(self, eid: str, types: list[str], at: str) -> None:
        """Mark the entity's temporal representation deleted at `at`, after what is held (its
        markers among it), so that no held write clears it (decision 100)."""
        self._write_held()
        self._record_tenant()
        deletions.record(self.conn, self.tenant, eid, types, at)

    def delete_history(
        self, eid: str, attr: str | None = None, dataset_id: Any = ...
    ) -> tuple[bool, Erasure | None]:
        """Delete an entity's whole history, or one attribute's: whether there was one, and
        the rows left to Store.erase_history. An entity's whole history is its erasure:
        the notifications not yet sent with its values are taken back too (decision 095)."""
        self.erased = True
        self._write_held()
        found, rest = temporal.delete(self.conn, self.names, self.tenant, eid, attr, dataset_id)
        if found and attr is None:
            self.erased_ids.append(eid)
        return found, rest

    def update_instance(self, eid: str, attr: str, instance_id: str, instance: Doc) -> bool:
        """Modify one stored attribute instance."""
        self._write_held()
        return temporal.update_instance(
            self.conn, self.names, self.tenant, eid, attr, instance_id, instance, self.max_bytes
        )

    def delete_instance(self, eid: str, attr: str, instance_id: str) -> bool:
        """Delete one stored attribute instance."""
        self.erased = True
        self._write_held()
        return temporal.delete_instance(self.conn, self.names, self.tenant, eid, attr, instance_id)

    def instance(self, eid: str, attr: str, instance_id: str) -> Doc | None:
        """One stored attribute instance, or None."""
        self._write_held()
        return temporal.instance(self.conn, self.names, self.tenant, eid, attr, instance_id)

    def history_kind(self, eid: str, attr: str) -> str | None:
        """The attribute type an attribute's history holds, or None when it has none."""
        self._write_held()
        return temporal.kind(self.conn, self.names, self.tenant, eid, attr)

    def temporal_exists(self, eid: str) -> bool:
        """Whether the entity has a temporal evolution."""
        self._write_held()
        return temporal.exists(self.conn, self.tenant, eid)

    def temporal_types(self, eid: str) -> list[str] | None:
        """The types of the entity's temporal evolution, None when it has none."""
        self._write_held()
        return temporal.types_of(self.conn, self.tenant, eid)
