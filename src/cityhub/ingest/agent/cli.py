"""`cityhub iot ...`: provision sources and devices, read dead letters and stats over HTTP.

The commands talk to a running hub (--url, --tenant); every failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cityhub.ingest.headers import hub_url, tenant_headers
from cityhub.masked_url import masked
from cityhub.ngsild.tenant import tenant_option

DEFAULT_URL = "http://127.0.0.1:1026"
PREFIX = "/iot/v1"


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--url", help=f"the hub (default {DEFAULT_URL}, CITYHUB_URL)")
    p.add_argument(
        "--tenant",
        default="",
        type=tenant_option,
        help="NGSILD-Tenant (default: the default tenant)",
    )
    return p


def _record_flags(p: argparse.ArgumentParser, device: bool) -> None:
    p.add_argument("--file", help="a JSON file with the whole record (flags override it)")
    p.add_argument("--entity-type", dest="entityType", help="entity type of the device(s)")
    p.add_argument("--apikey", help="API key (omitted on create: the hub generates one)")
    p.add_argument("--mapping", help="a JSON file holding the mapping ('-' reads stdin)")
    p.add_argument("--context", dest="ldContext", help="@context URL naming the attributes")
    p.add_argument("--description", help="free text kept with the record")
    if device:
        p.add_argument("--entity-id", dest="entityId", help="default urn:ngsi-ld:<type>:<id>")
        p.add_argument(
            "--protocol",
            choices=("mqtt", "http"),
            help="how the device sends (mqtt when created without it)",
        )
        p.add_argument("--source", help="the data source it belongs to")


def _page_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=100, help="most records listed (default 100)")
    p.add_argument("--offset", type=int, default=0, help="records skipped first (default 0)")


def add_parser(subparsers: Any) -> None:
    """Add `iot` and its sub-commands to the `cityhub` parser."""
    common = _common()
    iot = subparsers.add_parser("iot", help="manage IoT devices and sources of a running hub")
    kinds = iot.add_subparsers(dest="iot_kind", required=True)
    for kind, device in (("sources", False), ("devices", True)):
        what = kind[:-1]
        k = kinds.add_parser(kind, help=f"{what}s: list, get, create, update, delete")
        ops = k.add_subparsers(dest="iot_op", required=True)
        lst = ops.add_parser("list", parents=[common], help=f"list {what}s")
        _page_flags(lst)
        for op in ("get", "delete"):
            ops.add_parser(op, parents=[common], help=f"{op} one {what}").add_argument("id")
        for op in ("create", "update"):
            p = ops.add_parser(op, parents=[common], help=f"{op} a {what}")
            p.add_argument("id")
            _record_flags(p, device)
    dead = kinds.add_parser(
        "deadletters", help="refused device messages: list, get, retry, delete, clear"
    )
    ops = dead.add_subparsers(dest="iot_op", required=True)
    lst = ops.add_parser("list", parents=[common], help="list dead letters, oldest first")
    _page_flags(lst)
    one = []
    for op, what in (
        ("get", "show one dead letter"),
        ("retry", "send one letter's message again (stored: the letter is deleted)"),
        ("delete", "delete one dead letter"),
    ):
        one.append(ops.add_parser(op, parents=[common], help=what))
        one[-1].add_argument("id", help="the letter's id (from list)")
    clear = ops.add_parser("clear", parents=[common], help="delete the tenant's dead letters")
    for p in (lst, clear, *one):
        p.add_argument(
            "--unrouted",
            action="store_true",
            help="the letters of messages no device took (unknown id or key), hub-wide",
        )
    clear.add_argument(
        "--device",
        help="only the letters of this device id (erase what one device sent; default: all)",
    )
    kinds.add_parser("stats", parents=[common], help="message counters of the IoT agent")


def _read_json(path: str, what: str) -> Any:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read the {what} file {path}: {exc.strerror or exc}", 2) from None
    try:  # JSON is UTF-8, whatever the locale; a Latin-1 or cp949 file is refused, not guessed
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(
            f"the {what} file {path} is not UTF-8 (byte {raw[exc.start]:#04x} at offset "
            f"{exc.start}); save it as UTF-8",
            2,
        ) from None

    def refuse(token: str) -> Any:
        raise CliError(f"the {what} file {path} holds {token}, which JSON has no place for", 2)

    def finite(token: str) -> float:
        value = float(token)
        return value if math.isfinite(value) else refuse(f"{token} (beyond every double)")

    try:  # NaN, Infinity and 1e400 load in Python but no hub (nor JSON) can take them
        return json.loads(text, parse_constant=refuse, parse_float=finite)
    except json.JSONDecodeError as exc:
        raise CliError(f"the {what} file {path} is not valid JSON: {exc}", 2) from None
    except RecursionError:
        raise CliError(f"the {what} file {path} is nested too deeply", 2) from None


def _body(args: argparse.Namespace) -> dict[str, Any]:
    """The record to send: --file, then the flags on top."""
    body: dict[str, Any] = {}
    if args.file:
        loaded = _read_json(args.file, "record")
        if not isinstance(loaded, dict):
            raise CliError(f"the record file {args.file} must hold a JSON object", 2)
        body.update(loaded)
    if args.mapping:
        body["mapping"] = _read_json(args.mapping, "mapping")
    for key in ("entityType", "apikey", "ldContext", "description", "entityId", "protocol"):
        value = getattr(args, key, None)
        if value is not None:
            body[key] = value
    if getattr(args, "source", None) is not None:
        body["source"] = args.source
    body["id"] = args.id
    return body


def _request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None, dict[str, Any]]:
    """(method, path, JSON body, query) of the command."""
    kind, op = args.iot_kind, getattr(args, "iot_op", None)
    if kind == "stats":
        return "GET", f"{PREFIX}/stats", None, {}
    if kind == "deadletters":
        which = {"unrouted": "true"} if args.unrouted else {}
        if op == "clear":
            device = {"device": args.device} if args.device is not None else {}
            return "DELETE", f"{PREFIX}/deadletters", None, {**which, **device}
        if op in ("get", "retry", "delete"):
            letter = f"{PREFIX}/deadletters/{quote(args.id, safe='')}"
            if op == "retry":
                return "POST", letter + "/retry", None, which
            return ("GET" if op == "get" else "DELETE"), letter, None, which
        page = {"limit": args.limit, "offset": args.offset, **which}
        return "GET", f"{PREFIX}/deadletters", None, page
    base = f"{PREFIX}/{kind}"
    if op == "list":
        return "GET", base, None, {"limit": args.limit, "offset": args.offset}
    one = f"{base}/{quote(args.id, safe=':')}"
    if op == "get":
        return "GET", one, None, {}
    if op == "delete":
        return "DELETE", one, None, {}
    body = _body(args)
    if op == "create":
        return "POST", base, body, {}
    body.pop("id")
    return "PATCH", one, body, {}


def _problem(resp: Any) -> str:
    """One line from an error answer (ProblemDetails when the hub sent one)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "title" in body:
        return f"{resp.status_code} {body['title']}: {body.get('detail', '')}".rstrip(": ")
    return f"HTTP {resp.status_code}: {resp.text[:200].strip()}"


def _hub(flag: str | None) -> str:
    """The hub's URL: --url, else CITYHUB_URL, else the default; CliError (exit 2, a bad
    command line) naming where it came from when it cannot be one."""
    where, url = "--url", flag
    if url is None:
        where, url = "CITYHUB_URL", os.environ.get("CITYHUB_URL", DEFAULT_URL)
    try:
        return hub_url(url)
    except ValueError as exc:
        raise CliError(f"bad {where} {url!r}: {exc}", 2) from None


def run(args: argparse.Namespace) -> int:
    """Run one `cityhub iot` command; print the answer as JSON."""
    import httpx

    try:
        method, path, body, query = _request(args)
        headers = tenant_headers(args.tenant)
        url = _hub(args.url)
        try:
            resp = httpx.request(
                method, url + path, json=body, params=query, headers=headers, timeout=30
            )
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the hub at {url}: {exc or type(exc).__name__}") from None
        if resp.status_code >= 400:
            raise CliError(_problem(resp))
    except CliError as exc:
        print(f"cityhub iot: {masked(str(exc))}", file=sys.stderr)
        return exc.code
    answer = resp.json() if resp.status_code != 204 and resp.content else None
    keyed = isinstance(answer, dict) and bool(answer.get("apikey"))
    try:
        print("ok" if answer is None else json.dumps(answer, indent=2, ensure_ascii=False))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader (`| head`) stopped early: no traceback
        _drop_stdout()
        if keyed:
            tenant_flag = f" --tenant {shlex.quote(args.tenant)}" if args.tenant else ""
            print(
                f"cityhub iot: the output was cut short and its API key is lost; set another "
                f"with `cityhub iot {args.iot_kind} update {shlex.quote(args.id)} --apikey "
                f"KEY{tenant_flag}`",
                file=sys.stderr,
            )
        return 1
    if keyed:
        print("note: the API key is shown only this once; keep it now.", file=sys.stderr)
    return 0


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so Python's own flush at exit finds no broken pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (replaced, closed)
        pass
    finally:
        os.close(devnull)
