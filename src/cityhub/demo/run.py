"""`cityhub demo`: load the sample city into a fresh database and say what to try."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cityhub.demo.city import SampleCity, build_city, iso
from cityhub.demo.devices import device_steps
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.ngsild.temporal import TemporalService
from cityhub.settings import Settings
from cityhub.store.base import StoreError
from cityhub.store.sqlite import SqliteStore
from cityhub.store.sqlite.files import file_trouble, read_only, unopenable


def load_city(store: SqliteStore, city: SampleCity, *, progress: bool = True) -> tuple[int, int]:
    """Load the sample city's entities and history; returns (entities, history instances:
    the readings of its series, each stored once). A bar each, counting what the summary
    line counts."""
    tm = ContextCache().core
    entities = EntityService(store)
    temporal = TemporalService(store)
    chunk = 100
    bars = {"disable": not progress}
    with tqdm(total=len(city.entities), desc="sample city", unit="entity", **bars) as bar:
        for i in range(0, len(city.entities), chunk):
            part = city.entities[i : i + chunk]
            out = entities.batch_upsert("", part, tm, "replace")
            if out.errors:
                raise RuntimeError(f"sample city entity rejected: {out.errors[0][1].detail}")
            bar.update(len(part))
    bodies = [{k: v for k, v in item.items() if k not in ("id", "type")} for item in city.history]
    instances = sum(len(v) for body in bodies for v in body.values() if isinstance(v, list))
    current = {entity["id"]: entity for entity in city.entities}
    with tqdm(total=instances, desc="its history", unit="instance", **bars) as bar:
        for item, body in zip(city.history, bodies, strict=True):
            unrecorded = _not_yet_recorded(current[item["id"]], body)
            if unrecorded:
                temporal.append("", item["id"], unrecorded, tm)
            bar.update(sum(len(v) for v in body.values() if isinstance(v, list)))
    return len(city.entities), instances


def _not_yet_recorded(entity: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The instances of body the entity's write did not record already: it stored each current
    value, the last point of its series, and an append adds beside it (decisions/034), so
    every series ended in the same reading twice."""
    out: dict[str, Any] = {}
    for name, instances in body.items():
        now = entity.get(name)
        held = {
            (attr.get("observedAt"), attr.get("datasetId"))
            for attr in (now if isinstance(now, list) else [now])
            if isinstance(attr, dict)
        }
        left = [i for i in instances if (i.get("observedAt"), i.get("datasetId")) not in held]
        if left:
            out[name] = left
    return out


Claim = Callable[[str], str]  # lock a database for serving: '' once held, else why not
DEFAULT_DB = "cityhub-demo.db"  # the file `cityhub demo` builds when no --db is given
DEMO_MARK = "demo"  # meta key a demo database carries, so only a demo database is rebuilt;
# its value is the newest instant of the town, so `--keep` prints examples for that data


def replaceable(path: Path, city: SampleCity) -> str | None:
    """Why an existing file must not be replaced by a fresh demo database (None: it may).

    `--db` naming a city's real database, or one a hub is serving, deleted it: only a
    database the demo built is rebuilt, and only when no other connection has it open."""
    if not demo_built(path, city):
        return f"{path} is not a demo database; name another --db, or remove it yourself"
    try:
        conn = sqlite3.connect(path, timeout=0.5, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        mode = str(exc)
        if trouble := file_trouble(path, exc):  # a read-only disk, not a hub
            return f"cannot rebuild {path}: {trouble}"
    if mode != "delete":  # SQLite leaves WAL only when no other connection is open
        return f"{path} is in use ({mode}): stop the hub serving it first"
    return None


def demo_built(path: Path, city: SampleCity) -> bool:
    """Whether the demo built this database: it carries the demo's mark, or (built by a
    cityhub older than the mark) is the default file and holds nothing but the sample town.
    The default name alone let the demo delete a city's data imported into a file so named."""
    if _mark(path) is not None:
        return True
    return path.name == DEFAULT_DB and _only_the_town(path, city)


def _only_the_town(path: Path, city: SampleCity) -> bool:
    """Whether every entity and temporal entity the file holds is one of the sample town's,
    in the default tenant (False for a file that is no cityhub database)."""
    town = {("", entity["id"]) for entity in city.entities}
    try:
        conn = sqlite3.connect(read_only(path), uri=True, timeout=0.5)
        try:
            held = conn.execute(
                "SELECT tenant, id FROM entities UNION SELECT tenant, id FROM tentities"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        _unreadable(path, exc)
        return False
    return {(str(tenant), str(eid)) for tenant, eid in held} <= town


def _remove(path: Path) -> None:
    """Delete a demo database with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(str(path) + suffix)


def _build(path: Path, city: SampleCity) -> tuple[int, int]:
    """Load the sample city into a new database at path and mark it as the demo's own."""
    store = SqliteStore(path)
    try:
        counts = load_city(store, city)
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (DEMO_MARK, iso(city.start)),
            )
    finally:
        conn.close()
    return counts


def _built_for(path: Path) -> datetime | None:
    """The newest instant of the town a demo database holds (None: not recorded, e.g. a
    database built by an older cityhub), so the examples printed for it ask for its data."""
    mark = _mark(path)
    try:
        return datetime.fromisoformat(mark) if mark else None
    except ValueError:
        return None


def _mark(path: Path) -> str | None:
    """The demo mark a database file holds, read without writing (None: none, or no
    database to read)."""
    try:
        conn = sqlite3.connect(read_only(path), uri=True, timeout=0.5)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (DEMO_MARK,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        _unreadable(path, exc)
        return None
    return str(row[0]) if row else None


def _unreadable(path: Path, exc: sqlite3.Error) -> None:
    """StoreError when the file system kept the file from being read (a WAL database on a
    read-only disk): else it would pass for "not a demo database"."""
    if trouble := file_trouble(path, exc):
        raise StoreError(f"cannot read {path}: {trouble}")


def curl(url: str) -> str:
    """The curl command for an example: -g, or curl reads the [ ] of coordinates as a URL
    pattern and prints nothing; -i for a count, which comes in a header with an empty body."""
    flags = "-sgi" if "count=true" in url else "-sg"
    return f"curl {flags} '{url}'"


def prepare_demo(settings: Settings, *, keep: bool = False, claim: Claim | None = None) -> bool:
    """Build the demo database (fresh unless keep) and print example queries; False (and a
    line on stderr) when an existing file must not be replaced, or `claim` (serve's lock on
    the database) cannot have it: then nothing was printed on stdout."""
    path = Path(settings.db)
    try:
        return _prepare(path, settings, keep, claim or (lambda _: ""))
    except StoreError as exc:  # the file cannot be read: nothing was changed
        print(f"cityhub demo: {exc}; nothing was changed", file=sys.stderr)
        return False


def _prepare(path: Path, settings: Settings, keep: bool, claim: Claim) -> bool:
    """prepare_demo; StoreError when the file at path cannot be read."""
    if path.exists() and keep:
        city = build_city(start=_built_for(path))  # the town it holds, not this hour's
        if not demo_built(path, city):  # its example queries would match nothing there
            print(
                f"cityhub demo: {path} is not a demo database; serve it with "
                f"`cityhub serve --db {path}`",
                file=sys.stderr,
            )
            return False
        if held := claim(str(path)):  # another hub serves it: examples would point nowhere
            print(held, file=sys.stderr)
            return False
        print(f"cityhub demo: keeping {path}")
    else:
        t0 = time.perf_counter()
        city = build_city()
        if path.exists() and (why := replaceable(path, city)) is not None:
            print(f"cityhub demo: {why}; nothing was changed", file=sys.stderr)
            return False
        try:
            _remove(path)
            n, h = _build(path, city)
        except (StoreError, sqlite3.Error, OSError) as exc:
            with contextlib.suppress(OSError):
                _remove(path)  # a half-built demo database is of no use to anyone
            print(f"cityhub demo: cannot build {path}: {unopenable(path, exc)}", file=sys.stderr)
            return False
        if held := claim(str(path)):  # a hub started on it meanwhile
            print(held, file=sys.stderr)
            return False
        print(
            f"cityhub demo: loaded {n} entities and {h} history instances in {time.perf_counter() - t0:.1f} s into {path}"
        )
    base = f"http://{settings.host}:{settings.port}/ngsi-ld/v1"
    print("\nTry these (curl's -g keeps the [ ] of coordinates; -i shows the headers):")
    for desc, query in city.example_queries:
        print(f"  # {desc}\n  {curl(base + query)}")
    print("\nBe told when something changes (a subscription; the receiver gets a POST per change):")
    print(f"  curl -s -X POST {base}/subscriptions -H 'Content-Type: application/json' -d \\")
    print(
        """  '{"type": "Subscription", "entities": [{"type": "OffStreetParking"}],"""
        """ "watchedAttributes": ["availableSpotNumber"],"""
        """ "notification": {"endpoint": {"uri": "http://127.0.0.1:9999/notify"}}}'"""
    )
    print("\n".join(device_steps(settings, city)))
    print(f"\nHealth: http://{settings.host}:{settings.port}/health   Stop with Ctrl-C.\n")
    return True
