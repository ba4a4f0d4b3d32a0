"""API keys and ids: keys are generated with `secrets` and kept only as sha256 digests."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from cityhub.ngsild.errors import BadRequestData

# Keys and device ids travel in MQTT topic levels and URL query strings: no '/', '+', '#'.
_KEY = re.compile(r"[A-Za-z0-9_.~-]{16,128}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:~-]{0,127}")


def new_key() -> str:
    """A fresh random API key (32 URL-safe characters, 192 bits)."""
    return secrets.token_urlsafe(24)


def key_hash(key: str) -> str:
    """The sha256 digest under which a key is stored and looked up."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_key(value: Any, what: str = "apikey") -> str:
    """A caller-chosen key must be long enough to guess badly and safe in a topic."""
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise BadRequestData(
            f"{what} must be 16-128 characters among A-Z a-z 0-9 _ . ~ - (or omitted: the hub "
            "generates one)"
        )
    return value


def check_id(value: Any, what: str) -> str:
    """Device and source ids: 1-128 characters, safe in an MQTT topic level and a URL."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise BadRequestData(
            f"{what} must be 1-128 characters among A-Z a-z 0-9 _ . : ~ - (starting with a "
            f"letter or digit), got {value!r}"
        )
    return value
