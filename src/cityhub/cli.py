"""The `cityhub` command: serve the hub, or run the demo city."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cityhub import __version__

if TYPE_CHECKING:
    from cityhub.settings import Settings


def _server_args(p: argparse.ArgumentParser, db_default: str | None, db_help: str) -> None:
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1, CITYHUB_HOST)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default 1026, CITYHUB_PORT)")
    p.add_argument("--db", default=db_default, help=db_help)
    p.add_argument(
        "--log-level",
        default=None,
        help="critical, error, warning, info, debug or trace (default info, CITYHUB_LOG_LEVEL)",
    )
    p.add_argument(
        "--mqtt",
        default=None,
        help="IoT MQTT southbound: off, embedded or mqtt://host:1883 (default off, CITYHUB_MQTT)",
    )


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    top = argparse.ArgumentParser(
        prog="cityhub", description="A smart-city data hub (NGSI-LD broker)."
    )
    top.add_argument("--version", action="version", version=f"cityhub {__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the NGSI-LD API on the embedded store")
    _server_args(serve, None, "SQLite database file (default ./cityhub.db, CITYHUB_DB)")
    demo = sub.add_parser("demo", help="load a sample city into a fresh database and serve it")
    # never CITYHUB_DB: that names the city's own database, which the demo would rebuild
    _server_args(demo, "./cityhub-demo.db", "the demo's database (default ./cityhub-demo.db)")
    demo.add_argument("--keep", action="store_true", help="keep an existing demo database")
    backup = sub.add_parser(
        "backup", help="write a consistent copy of the database while the hub keeps serving"
    )
    backup.add_argument("dest", help="the new backup file (must not exist)")
    backup.add_argument(
        "--db", default=None, help="the database to copy (default ./cityhub.db, CITYHUB_DB)"
    )
    backup.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    restore = sub.add_parser(
        "restore", help="put a backup in place of the database (stop the hub first)"
    )
    restore.add_argument("backup", help="the backup file to restore (checked first)")
    restore.add_argument(
        "--db", default=None, help="the database to replace (default ./cityhub.db, CITYHUB_DB)"
    )
    restore.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    from cityhub.ingest.importers.cli import add_parser as add_import_parser

    add_import_parser(sub)
    from cityhub.ingest.agent.cli import add_parser as add_iot_parser

    add_iot_parser(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cityhub` script; this module imports only the standard library, so
    a Ctrl-C in the seconds the rest takes to import is exit 130 (as `import` documents), not
    a traceback."""
    try:
        return _command(argv)
    except KeyboardInterrupt:
        return 130


def _command(argv: Sequence[str] | None) -> int:
    """Run the command argv names."""
    args = parser().parse_args(argv)
    if args.command == "import":
        from cityhub.ingest.importers.cli import run as run_import

        return run_import(args)
    if args.command == "iot":
        from cityhub.ingest.agent.cli import run as run_iot

        return run_iot(args)
    if args.command == "backup":
        return run_backup(args.db, args.dest, progress=not args.no_progress)
    if args.command == "restore":
        return run_restore(args.db, args.backup, progress=not args.no_progress)
    overrides = {
        k: v
        for k, v in (
            ("host", args.host),
            ("port", args.port),
            ("db", args.db),
            ("log_level", args.log_level),
            ("mqtt", args.mqtt),
        )
        if v is not None
    }
    settings = load_settings(**overrides)
    if settings is None:
        return 2
    if args.command == "demo":
        from cityhub.demo.run import prepare_demo

        busy = _ports_taken(settings)  # before the build: examples must not point elsewhere
        if busy:
            print(busy, file=sys.stderr)
            return 2
        if not prepare_demo(settings, keep=args.keep, claim=_claim):
            return 2
    return serve(settings)


TOML_FILE = "cityhub.toml"  # Settings.model_config["toml_file"], read from the working folder
# CITYHUB_* variables that are no setting, yet no typo: `cityhub iot` reads CITYHUB_URL, the
# tests CITYHUB_SHARED_DATA (the GTFS feeds), CITYHUB_FUZZ_EXAMPLES (README, "Other commands")
# and CITYHUB_PIN_ROWS (tests/test_create_rows.py rewrites its pinned rows)
OTHER_VARIABLES = frozenset(
    {"CITYHUB_URL", "CITYHUB_SHARED_DATA", "CITYHUB_FUZZ_EXAMPLES", "CITYHUB_PIN_ROWS"}
)


def load_settings(**overrides: Any) -> Settings | None:
    """The settings from CITYHUB_* and these overrides; None, each bad one named on stderr."""
    from pathlib import Path

    unknown = _unknown_variables()
    for line in unknown:
        _say(line)
    if unknown:
        return None
    toml = Path(TOML_FILE)
    if toml.exists() and not toml.is_file():  # pydantic skips it as if it were not there
        what = "a folder" if toml.is_dir() else "not a regular file"
        print(f"cityhub: cannot read {TOML_FILE}: it is {what}", file=sys.stderr)
        return None
    settings = _read_settings(overrides)
    if settings is None:
        return None
    unread = _unreadable_mirrors(settings, overrides)
    for line in unread:
        _say(line)
    return None if unread else settings


def _say(line: str) -> None:
    """One line on stderr, any password in a URL of it masked (a broker URL's, a mirror's)."""
    from cityhub.masked_url import masked

    print(f"cityhub: {masked(line)}", file=sys.stderr)


def _read_settings(overrides: dict[str, Any]) -> Settings | None:
    """Settings(**overrides); None, each bad value named on stderr as the user wrote it."""
    import tomllib

    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from cityhub.settings import Settings

    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:  # says where in the file, not which file
        print(f"cityhub: cannot read {TOML_FILE}: {exc}", file=sys.stderr)
        return None
    except SettingsError as exc:  # a variable that is not JSON: no field list
        _say(_unparsed(exc, overrides))
        return None
    except UnicodeDecodeError as exc:  # TOML is UTF-8; a Windows editor may save Latin-1
        print(
            f"cityhub: cannot read {TOML_FILE}: byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start} is not UTF-8; save the file as UTF-8",
            file=sys.stderr,
        )
        return None
    except OSError as exc:
        print(f"cityhub: cannot read {TOML_FILE}: {exc.strerror or exc}", file=sys.stderr)
        return None
    except ValidationError as exc:
        for err in exc.errors():
            field, *within = (str(part) for part in err["loc"])
            if err["type"] == "extra_forbidden":  # only the file can name an unknown setting
                _say(_unknown_key(field))
                continue
            member = "".join(f"[{key!r}]" for key in within)  # context_mirrors['https://…']
            _say(
                f"bad setting {field}{member} ({_origin(field, overrides)}) = "
                f"{err.get('input')!r}: {err['msg'].removeprefix('Value error, ')}"
            )
        return None


def _unreadable_mirrors(settings: Settings, overrides: dict[str, Any]) -> list[str]:
    """A line for each local mirror file that cannot be read. Settings lets one be missing (a
    site may put it in place later), but a typo in the path found only at the first request
    needing that context, which got 503, broke the rule that a bad setting stops the start."""
    lines = []
    for url, mirror in settings.context_mirrors.items():
        if mirror.startswith(("http://", "https://")):
            continue
        try:
            with open(mirror, "rb"):
                pass
        except OSError as exc:
            lines.append(
                f"bad setting context_mirrors[{url!r}] ({_origin('context_mirrors', overrides)})"
                f" = {mirror!r}: cannot read the file: {exc.strerror or exc}"
            )
    return lines


def _unparsed(exc: Exception, overrides: dict[str, Any]) -> str:
    """A setting whose text does not parse (CITYHUB_CONTEXT_MIRRORS that is not JSON), named
    as the user wrote it; pydantic names only the field and its "EnvSettingsSource"."""
    import os
    import re

    said = re.fullmatch(r'error parsing value for field "(\w+)" from source "\w+"', str(exc))
    if said is None:
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        return f"bad settings: {exc}{cause}"
    field = said.group(1)
    origin = _origin(field, overrides)
    value = overrides.get(
        field, next((v for k, v in os.environ.items() if k.upper() == origin), None)
    )
    return f"bad setting {field} ({origin}) = {value!r}: not JSON ({exc.__cause__})"


def _unknown_variables() -> list[str]:
    """A line for each CITYHUB_* variable that names no setting: a mistyped one (say
    CITYHUB_HISTORY_DAY) was ignored without a word, while a mistyped key in cityhub.toml is
    refused, and for retention that kept personal data for ever."""
    import difflib
    import os

    from cityhub.settings import Settings

    known = {f"CITYHUB_{name.upper()}" for name in Settings.model_fields} | OTHER_VARIABLES
    lines = []
    for name in sorted(os.environ):
        upper = name.upper()  # pydantic reads the names case-insensitively
        if not upper.startswith("CITYHUB_") or upper in known:
            continue
        # matched without the prefix, which every name shares
        meant = difflib.get_close_matches(upper[8:], sorted(k[8:] for k in known), n=1)
        hint = f"did you mean CITYHUB_{meant[0]}?" if meant else "no setting has that name"
        lines.append(f"unknown variable {name} ({hint}); README.md lists the settings")
    return lines


def _origin(field: str, overrides: dict[str, Any]) -> str:
    """Where a setting's value came from, as the user wrote it: flag, variable or file."""
    import os

    if field in overrides:
        return "--" + field.replace("_", "-")
    variable = f"CITYHUB_{field.upper()}"
    if any(name.upper() == variable for name in os.environ):  # names are case-insensitive
        return variable
    return TOML_FILE


def _unknown_key(key: str) -> str:
    """An unknown key of cityhub.toml, with the key meant when it is a variable's name."""
    from cityhub.settings import Settings

    meant = key.lower().removeprefix("cityhub_")
    if meant in Settings.model_fields:
        return f"unknown key {key} in {TOML_FILE}; write {meant} (the setting's name in lowercase)"
    return (
        f"unknown key {key} in {TOML_FILE}; its keys are the settings' names in lowercase "
        "without CITYHUB_ (port = 1026)"
    )


def _db_or_setting(db: str | None) -> str | None:
    """--db, else CITYHUB_DB; None when a setting is bad (load_settings said which)."""
    if db:
        return db
    settings = load_settings()
    return None if settings is None else settings.db


def serve(settings: object) -> int:
    """Run uvicorn on the app built from settings."""
    import sqlite3
    from pathlib import Path

    import uvicorn

    from cityhub.api.app import create_app
    from cityhub.settings import Settings
    from cityhub.store.base import StoreError
    from cityhub.store.sqlite.files import removed_on_failure, unopenable

    assert isinstance(settings, Settings)
    busy = _ports_taken(settings)
    if busy:
        print(busy, file=sys.stderr)
        return 2
    # the ports first: a hub that cannot listen neither creates nor changes its database
    existed = Path(settings.db).exists()  # then locked before it is opened, else after
    held = _claim(settings.db) if existed else ""
    if not held:
        try:
            with removed_on_failure(settings.db):
                app = create_app(settings)
        except (StoreError, sqlite3.Error) as exc:
            held = (
                f"cityhub: cannot open the database {settings.db}: {unopenable(settings.db, exc)}"
            )
    if not held and not existed:
        held = _claim(settings.db)
    if held:
        print(held, file=sys.stderr)
        return 2
    from cityhub.api.protocol import BoundedHttpTools, open_files_for
    from cityhub.retention import kept_for

    log = _log_to_stderr(settings.log_level)
    log.info(
        "serving %s on http://%s:%s: sync %s, %d reader threads, history kept: %s",
        settings.db,
        settings.host,
        settings.port,
        settings.sync,
        settings.query_threads,
        kept_for(settings.history_days),
    )
    if _reachable_by_others(settings.host):
        log.warning(
            "%s lets other machines reach the API, which has no authentication (anyone can "
            "write, and purge, the town's data): keep it on 127.0.0.1 behind a reverse proxy "
            "that authenticates, or firewall the port (README, Running it for a town)",
            settings.host,
        )
    tune_runtime()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        http=BoundedHttpTools.capped(
            open_files_for(settings.max_connections, settings.notify_connections),
            settings.client_timeout,
            settings.client_min_rate,
        ),
        # uvicorn waits for every open request without it (one stalled client held a SIGTERM
        # for minutes); it takes a float, though typed int
        timeout_graceful_shutdown=settings.shutdown_timeout,  # type: ignore[arg-type]
    )
    return 0


@contextmanager
def _byte_bar(
    desc: str, enabled: bool, intro: str = ""
) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar in bytes on stderr for a long copy; yields its report(done, total), or
    None when it is off and there is no intro. The intro line and the bar appear with the
    first report, so a request refused before any copying prints its reason alone."""
    from tqdm import tqdm

    bars: list[tqdm[Any]] = []
    started: list[bool] = []

    def report(done: int, total: int) -> None:
        if not started:
            started.append(True)
            if intro:
                print(intro, file=sys.stderr)
        if not enabled:
            return
        if not bars:
            bars.append(tqdm(desc=desc, unit="B", unit_scale=True, file=sys.stderr, total=total))
        bars[0].total = total
        bars[0].update(done - bars[0].n)

    try:
        yield report if enabled or intro else None
    finally:
        for bar in bars:
            bar.close()


def run_backup(db: str | None, dest: str, *, progress: bool = True) -> int:
    """`cityhub backup DEST`: 0 written and checked, 2 nothing written (the reason on stderr)."""
    from pathlib import Path

    from cityhub.store.base import StoreError
    from cityhub.store.sqlite.snapshot import backup

    path = _db_or_setting(db)
    if path is None:
        return 2
    source = Path(path)
    intro = f"cityhub: backing up {source} to {dest} ..."  # once the copy has started
    try:
        with _byte_bar("backup", progress, intro) as report:
            done = backup(source, Path(dest), report)
    except StoreError as exc:
        print(f"cityhub: {exc}", file=sys.stderr)
        return 2
    print(
        f"cityhub: wrote {done.path} ({done.size / 1e6:,.1f} MB, {done.entities:,} entities, "
        f"checked) in {done.seconds:.1f} s"
    )
    return 0


def run_restore(db: str | None, source: str, *, progress: bool = True) -> int:
    """`cityhub restore BACKUP`: 0 restored, 2 nothing changed (the reason on stderr)."""
    from pathlib import Path

    from cityhub.store.base import StoreError
    from cityhub.store.sqlite.snapshot import restore

    path = _db_or_setting(db)
    if path is None:
        return 2
    target = Path(path)
    try:
        with _byte_bar("restore", progress) as report:
            done = restore(Path(source), target, report)
    except StoreError as exc:
        print(f"cityhub: {exc}", file=sys.stderr)
        return 2
    where = f"{done.path}" if done.path == target else f"{done.path} (where {target} leads)"
    print(f"cityhub: restored {where} from {source} ({done.entities:,} entities)")
    if done.kept is not None:
        print(f"cityhub: the database it replaced is kept as {done.kept}; delete it when done")
    return 0


def _log_to_stderr(level: str) -> logging.Logger:
    """Show the hub's own log lines (cityhub.*) beside uvicorn's, at the same level: without a
    handler Python drops everything below WARNING (migrations, retention, IoT subscriptions)."""
    log = logging.getLogger("cityhub")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:  %(name)s: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel({"trace": "DEBUG"}.get(level, level).upper())
    return log


def tune_runtime() -> None:
    """Tune the interpreter for a long-running server.

    The objects built at start-up (modules, contexts, routes) move to the GC's permanent
    generation, so full collections no longer walk them, and full collections run half as often
    (+4-8 % on writes, bench a, c, d). The GIL is handed over every 1 ms instead of 5: while a
    reader thread renders a broad query, the event loop waits at most that long for each turn
    (bench i --quick, two runs each: the p99 of reads by id under broad queries was 29 and
    29 ms at 5 ms, 10 and 0.5 ms at 1 ms)."""
    import gc
    import sys

    gc.collect()
    gc.freeze()
    gc.set_threshold(700, 20, 20)
    sys.setswitchinterval(0.001)


# the database files this process serves: real path -> its open file, locked (demo claims
# its database before printing its examples, and serve then finds it held already)
_CLAIMS: dict[str, int] = {}


def _claim(db: str) -> str:
    """Lock the database file for as long as this process serves it ('' once held, else why
    not). Two hubs on one file kept the data sound, but each notified only the subscriptions
    it had loaded itself, so changes written through the second one went unnotified. An
    `import --db` beside a hub takes no lock: it writes through SQLite's own locking."""
    import fcntl
    import os

    real = os.path.realpath(db)
    if real in _CLAIMS:
        return ""
    odd = _not_a_file(db)
    if odd:
        return f"cityhub: cannot open the database {db}: it is not a regular file ({odd})"
    try:
        fd = os.open(db, os.O_RDONLY)
    except OSError as exc:
        return f"cityhub: cannot open the database {db}: {exc.strerror}"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # apart from SQLite's own fcntl locks
    except OSError:
        os.close(fd)
        return (
            f"cityhub: another cityhub serve is using {db}; stop it first, or serve a "
            "backup of it (`cityhub backup`) on another --db"
        )
    _CLAIMS[real] = fd
    return ""


def _not_a_file(db: str) -> str:
    """What a path that is neither a file nor a folder is ('' otherwise): opening a FIFO to
    lock it waited for ever for a writer, without a word (a folder is named later)."""
    import os
    import stat

    try:
        mode = os.stat(db).st_mode
    except OSError:
        return ""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return ""
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"))
    return next((name for test, name in kinds if test(mode)), "a device")


def _ports_taken(settings: Settings) -> str:
    """Why the hub cannot listen (its HTTP port, or the embedded MQTT broker's), '' when it can."""
    embedded = settings.mqtt == "embedded"
    if embedded and settings.mqtt_embedded_port == settings.port:  # each is free on its own
        return (
            f"cityhub: the embedded MQTT broker and HTTP cannot share port {settings.port}; "
            "pick another with CITYHUB_MQTT_EMBEDDED_PORT or --port"
        )
    busy, host_at_fault = _port_busy(settings.host, settings.port)
    if busy:
        fix = (
            "check --host or CITYHUB_HOST"
            if host_at_fault
            else "pick another with --port or CITYHUB_PORT"
        )
        return f"cityhub: cannot listen on {settings.host}:{settings.port} ({busy}); {fix}"
    busy = _port_busy(settings.host, settings.mqtt_embedded_port)[0] if embedded else ""
    if busy:
        return (
            f"cityhub: the embedded MQTT broker cannot listen on port "
            f"{settings.mqtt_embedded_port} ({busy}); pick another with "
            "CITYHUB_MQTT_EMBEDDED_PORT"
        )
    return ""


def _reachable_by_others(host: str) -> bool:
    """Whether the address the hub binds is more than this machine's loopback (a name counts
    as what it resolves to; one that does not resolve was refused before)."""
    import ipaddress
    import socket

    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return True
    return not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found)


def _port_busy(host: str, port: int) -> tuple[str, bool]:
    """Why the port cannot be bound ('' when it can), and whether the host is at fault (a name
    that does not resolve, an address this machine does not have): a clear message beats
    uvicorn's log, and the advice must point at the right setting."""
    import errno
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror as exc:
            return exc.strerror or str(exc), True
        except OSError as exc:
            return exc.strerror or str(exc), exc.errno == errno.EADDRNOTAVAIL
    return "", False


if __name__ == "__main__":
    raise SystemExit(main())
