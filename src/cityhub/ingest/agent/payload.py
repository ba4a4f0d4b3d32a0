"""Device payloads: a JSON object (or an array of them), or compact text `key|value|key|value`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cityhub.ingest.agent.reasons import BAD_VALUE, MALFORMED, TOO_LARGE, Rejected
from cityhub.jsondepth import MAX_DEPTH, too_deep
from cityhub.jsonints import huge_integer, huge_integer_detail

MAX_BYTES = 256 * 1024  # a device message larger than this is refused (too_large)
MAX_MEASURES = 1000  # objects in one JSON array
JSON, TEXT = "json", "text"

Measures = list[dict[str, Any]]


@dataclass(slots=True)
class Raw:
    """One device message as it arrived, before anything was made of it."""

    protocol: str  # mqtt | http
    apikey: str
    device: str
    payload: bytes
    form: str | None = None  # json | text | None (sniff)
    topic: str = ""
    received: float = field(default_factory=time.time)
    ack: Callable[[], None] | None = None  # MQTT QoS 1: the PUBACK, sent once settled
    replay: bool = False  # a dead letter retried: counted apart, and never lettered again


def decode(payload: bytes, form: str | None = None) -> tuple[Measures, bool]:
    """The measurements of one message and whether they came as text (values are strings then).

    form is JSON or TEXT (HTTP says which by Content-Type); None sniffs it (MQTT has no
    content type): a payload starting with '{' or '[' is JSON.
    """
    if len(payload) > MAX_BYTES:
        raise Rejected(TOO_LARGE, f"the payload has {len(payload):,} bytes; at most {MAX_BYTES:,}")
    if form is None:
        form = JSON if payload.lstrip()[:1] in (b"{", b"[") else TEXT
    if form == JSON:
        return _json(payload), False
    return [_compact(payload)], True


def _json(payload: bytes) -> Measures:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Rejected(MALFORMED, f"the payload is not valid JSON: {exc}") from None
    if too_deep(payload, body):
        raise Rejected(MALFORMED, f"the payload nests JSON deeper than {MAX_DEPTH} levels")
    huge = huge_integer(payload)
    if huge is not None:
        raise Rejected(BAD_VALUE, huge_integer_detail(huge))
    if isinstance(body, dict):
        return [body]
    if (
        isinstance(body, list)
        and body
        and len(body) <= MAX_MEASURES
        and all(isinstance(item, dict) for item in body)
    ):
        return body
    raise Rejected(
        MALFORMED,
        f"a JSON payload must be an object or an array of 1-{MAX_MEASURES} objects",
    )


def _compact(payload: bytes) -> dict[str, Any]:
    try:
        text = payload.decode().strip()
    except UnicodeDecodeError:
        raise Rejected(MALFORMED, "the payload is neither JSON nor UTF-8 text") from None
    parts = [p.strip() for p in text.split("|")]
    if len(parts) < 2 or len(parts) % 2:
        raise Rejected(MALFORMED, "compact text must be key|value pairs: key|value|key|value")
    keys = parts[0::2]
    if not all(keys):
        raise Rejected(MALFORMED, "compact text has an empty key")
    return dict(zip(keys, parts[1::2], strict=True))
